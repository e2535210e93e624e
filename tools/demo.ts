/**
 * `npm run demo`: drives bounded, realistic traffic at a running `npm start`
 * (FLIGHTS_URL, default http://127.0.0.1:8080) so /dashboard has something to
 * show, then stops. The key is KEY, else the first one of DATA_DIR/api-keys.json.
 * DEMO_SECONDS (default 120) bounds the steady phases; the burst comes halfway.
 */
import { loadConfig, int } from '../functions/core/config.js';
import { parseKeyList, readKeysFile } from '../functions/ops/api-keys.js';
import { driveTraffic } from './demo-traffic.js';

const config = loadConfig();
const url = process.env.FLIGHTS_URL ?? `http://${config.host}:${config.port}`;
const key = process.env.KEY || parseKeyList(config.auth.keys)[0]?.key || (await readKeysFile(config.auth.keysFile))[0]?.key;
const seconds = int(process.env, 'DEMO_SECONDS', 120);

console.log(`demo: ${seconds} s of traffic at ${url}${key ? '' : ' without an API key'}; watch ${url}/dashboard`);
const started = Date.now();
const report = await driveTraffic({
  url,
  ...(key ? { key } : {}),
  steadySeconds: seconds,
  uploadsPerSecond: 2,
  burstUploads: 40,
  burstRows: 5000,
  badShare: 0.1,
  onResult: (what, status) => {
    if (status >= 500) console.log(`demo: ${what} answered ${status}`);
  },
});
console.log(`demo: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
for (const [what, n] of Object.entries(report.counts).sort()) console.log(`  ${what.padEnd(20)} ${n}`);
