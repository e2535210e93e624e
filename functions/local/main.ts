/** `npm start`: the whole pipeline on one machine, on the embedded adapters. */
import { createRuntime } from '../runtime.js';
import { startLocalPipeline } from './pipeline.js';
import { specFile } from './gateway.js';

const rt = await createRuntime();
const pipeline = await startLocalPipeline(rt);
const { url } = pipeline;
console.log(`Flights pipeline running at ${url} (data in ${rt.config.dataDir}, routes from ${specFile()})

  curl -F file=@samples/flights-sample.csv ${url}/upload
  curl ${url}/uploads/<uploadId>
  curl '${url}/getdata'
  curl ${url}/openapi.yaml
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
