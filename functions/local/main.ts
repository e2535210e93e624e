/** `npm start`: the whole pipeline on one machine, on the embedded adapters. */
import { loadConfig } from '../core/config.js';
import { installCrashGuard } from '../core/crash-guard.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { startLocalPipeline, type LocalPipeline } from './pipeline.js';
import { specFile } from './gateway.js';
import { claimDataDir, listenFailure, StartupError } from './startup.js';

const config = loadConfig();

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
installCrashGuard(rt.log);
const { url } = pipeline;
console.log(`Flights pipeline running at ${url} (data in ${rt.config.dataDir}, routes from ${specFile()})

  curl -F file=@samples/flights-sample.csv ${url}/upload       upload a CSV (≤ 512 MiB inline)
  npx flights-cli upload big.csv --url ${url}                  any size, resumable (signed URL)
  curl ${url}/uploads/<uploadId>                               stored → loading → loaded | failed
  curl '${url}/getdata?carrier=eq.AA&limit=5'                  query (grammar: ${url}/schema)
  curl -X POST '${url}/exports?origin=eq.JFK'                  export any number of rows
  curl ${url}/openapi.yaml                                     the API
`);

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
