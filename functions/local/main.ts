/** `npm start`: the whole pipeline on one machine, on the embedded adapters. */
import { loadConfig } from '../core/config.js';
import { installCrashGuard } from '../core/crash-guard.js';
import { startValidatorThread } from '../ingest/off-thread-validator.js';
import { keyToShow } from '../ops/gateway-access.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { startLocalPipeline, type LocalPipeline } from './pipeline.js';
import { specFile } from './gateway.js';
import { claimDataDir, listenFailure, StartupError } from './startup.js';

const config = loadConfig();
// Before the gateway starts, so the development key made on a first run is among those it accepts.
const key = await keyToShow(config.auth);

async function start(): Promise<{ rt: Runtime; pipeline: LocalPipeline; release: () => Promise<void> }> {
  const release = await claimDataDir(config);
  const rt = await createRuntime(config);
  try {
    return { rt, pipeline: await startLocalPipeline(rt), release };
  } catch (e) {
    await rt.close();
    await release();
    throw listenFailure(e, config) ?? e;
  }
}

const started = await start().catch((e: unknown) => {
  if (!(e instanceof StartupError)) throw e;
  console.error(e.message);
  process.exit(1);
});
const { rt, pipeline, release } = started;
startValidatorThread(config.ingest.validationThreads);
installCrashGuard(rt.log);
const { url } = pipeline;
// Before the banner: whoever reads "running at" may stop us at once (a test, a supervisor).
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    rt.log.info({ signal }, 'stopping');
    void pipeline
      .close()
      .then(() => rt.close())
      .then(release)
      .then(() => process.exit(0));
  });
}

const auth = key
  ? `API key "${key.name}" (from ${process.env.API_KEYS ? 'API_KEYS' : rt.config.auth.keysFile}):\n\n  export KEY=${key.key}\n`
  : rt.config.auth.enabled
    ? `No API key configured: add one to ${rt.config.auth.keysFile} or API_KEYS.\n`
    : `AUTH=off: NO ACCESS CONTROL. Anyone who can reach ${url} can upload and read everything.\n`;
const k = rt.config.auth.enabled ? ` -H "x-api-key: $KEY"` : '';
console.log(`Flights pipeline running at ${url} (data in ${rt.config.dataDir}, routes from ${specFile()})
${auth}
  curl${k} -F file=@samples/flights-sample.csv ${url}/upload       upload a CSV (≤ 512 MiB inline)
  npx flights-cli upload big.csv --url ${url}                  any size, resumable (signed URL)
  curl${k} ${url}/uploads/<uploadId>                               stored → loading → loaded | failed
  curl${k} '${url}/getdata?carrier=eq.AA&limit=5'                  query (grammar: ${url}/schema)
  curl${k} -X POST '${url}/exports?origin=eq.JFK'                  export any number of rows
  curl ${url}/openapi.yaml                                     the API
`);
