/**
 * `npm run soak` (not in CI): `npm start` as a child process under a steady
 * upload rate (default 6,000 an hour: 10× the seed's 600) with a SIGKILL every
 * SOAK_KILL_EVERY_S seconds, for SOAK_MINUTES (default 30); it stops by
 * itself. Every 10 s it prints the server's RSS and open file descriptors
 * (they must stay flat between kills); at the end, the reconciliation check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flightsCsv } from '../support/generate-flights.js';
import { uploadUntilAnswered, type Outcome } from './support/client.js';
import { reconcile } from './support/reconciliation.js';
import { startServer } from './support/server.js';

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const perHour = Number(process.env.SOAK_UPLOADS_PER_HOUR ?? 6000);
const killEveryMs = Number(process.env.SOAK_KILL_EVERY_S ?? 300) * 1000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flights-soak-'));
let server = await startServer(dataDir);
const endAt = Date.now() + minutes * 60_000;
const inFlight: Promise<Outcome>[] = [];
const samples: string[] = [];

function sample(): void {
  const pid = server.child.pid!;
  const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  const line = `${new Date().toISOString()} pid ${pid} rss ${Math.round(Number(rss) / 1024)} MiB fds ${fds} uploads ${inFlight.length}`;
  samples.push(line);
  console.log(line);
}

let i = 0;
let nextKill = Date.now() + killEveryMs;
let nextSample = Date.now();
while (Date.now() < endAt) {
  inFlight.push(uploadUntilAnswered(() => server.url, flightsCsv(20, 7_000_000 + i), `soak-${i}`, endAt + 300_000));
  i++;
  if (Date.now() >= nextSample) {
    sample();
    nextSample += 10_000;
  }
  if (Date.now() >= nextKill) {
    await server.kill();
    server = await startServer(dataDir);
    console.log(`${new Date().toISOString()} killed and restarted`);
    nextKill += killEveryMs;
  }
  await new Promise((r) => setTimeout(r, 3_600_000 / perHour));
}
const outcomes = await Promise.all(inFlight);
const acknowledged = outcomes.flatMap((o) => ('acknowledged' in o ? [o.acknowledged] : []));
for (const a of acknowledged) {
  while (!['loaded', 'duplicate', 'failed'].includes(((await (await fetch(`${server.url}/uploads/${a.uploadId}`)).json()) as { status: string }).status)) {
    await new Promise((r) => setTimeout(r, 200));
  }
}
sample();
await server.stop();
const result = await reconcile(dataDir, 'flights-local', acknowledged, []);
console.log(JSON.stringify({ minutes, uploads: i, ...result, leftovers: result.leftovers.length, unsettled: result.unsettled.length }));
fs.rmSync(dataDir, { recursive: true, force: true });
process.exit(result.lost || result.duplicated ? 1 : 0);
