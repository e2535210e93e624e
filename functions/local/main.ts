/** `npm start`: the whole pipeline on one machine, on the embedded adapters. */
import { installCrashGuard } from '../core/crash-guard.js';
import { createRuntime } from '../runtime.js';
import { startLocalPipeline } from './pipeline.js';
import { specFile } from './gateway.js';

const rt = await createRuntime();
installCrashGuard(rt.log);
const pipeline = await startLocalPipeline(rt);
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
      .then(() => process.exit(0));
  });
}
