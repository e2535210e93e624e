/**
 * The validator alone, for profiling: `node --import ./node_modules/tsx/dist/loader.mjs bench/validate.ts <file.csv> [runs]`
 * streams the file through `CsvValidator` into a sink that drops the output, and prints MiB/s per run.
 * `--generate <MB>` first writes a generated flights file to the given path.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvValidator } from '../functions/ingest/validator.js';
import { flightLines, KAGGLE_HEADER } from '../test/support/generate-flights.js';

const [file, second] = process.argv.slice(2);
if (!file) throw new Error('usage: bench/validate.ts <file.csv> [runs] | <file.csv> --generate <MB>');

if (second === '--generate') {
  const bytes = Number(process.argv[4]) * 1e6;
  const out = createWriteStream(file);
  let written = 0;
  out.write(KAGGLE_HEADER + '\n');
  for (let seed = 1, rows = 0; written < bytes; seed++) {
    let chunk = '';
    for (const line of flightLines(10_000, seed, rows)) chunk += line + '\n';
    rows += 10_000;
    written += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
} else {
  const size = (await stat(file)).size;
  for (let run = 0; run < Number(second ?? 1); run++) {
    const validator = new CsvValidator();
    const t0 = performance.now();
    await pipeline(createReadStream(file, { highWaterMark: 1 << 16 }), validator, new Writable({ write: (_c, _e, done) => done() }));
    const s = (performance.now() - t0) / 1000;
    console.log(`${(size / 2 ** 20 / s).toFixed(1)} MiB/s (${validator.rows} rows, ${s.toFixed(2)} s)`);
  }
}
