/**
 * The validator alone, for profiling: `node --import ./node_modules/tsx/dist/loader.mjs bench/validate.ts <file.csv> [runs]`
 * streams the file through `CsvValidator` into a sink that drops the output, and prints MiB/s per run
 * beside a bare pass of the reader (bench/support.ts) run just before it, by wall-clock and by CPU
 * time (which moves less with the load of a shared machine), with their ratio.
 * `--generate <MB>` first writes a generated flights file to the given path.
 * `--quoted` instead times one record whose quoted field (full of doubled
 * quotes and line breaks) is 1 MiB and then 4 MiB, fed in 16 KiB chunks as a
 * socket gives them, and prints the ratio: a reader linear in its input gives about 4.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvValidator, DEFAULT_LIMITS } from '../functions/ingest/validator.js';
import { flightLines, KAGGLE_HEADER } from '../test/support/generate-flights.js';
import { bareRead } from './support.js';

const [file, second] = process.argv.slice(2);
if (!file) throw new Error('usage: bench/validate.ts <file.csv> [runs] | <file.csv> --generate <MB> | --quoted');

const drop = (): Writable => new Writable({ write: (_c, _e, done) => done() });

/** Best of three, in ms, for a file whose one row holds a quoted field of `mib` MiB. */
async function quotedFieldMs(mib: number): Promise<number> {
  const field = 'say ""hi""\n'.repeat(Math.ceil((mib * 2 ** 20) / 12)).slice(0, mib * 2 ** 20);
  const bytes = Buffer.from(`${KAGGLE_HEADER}\n"${field}"\n`);
  const chunks = Array.from({ length: Math.ceil(bytes.length / 16384) }, (_, i) => bytes.subarray(i * 16384, (i + 1) * 16384));
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    // Bounds raised so the whole field is read; the row then fails as too long a field, at its end.
    const validator = new CsvValidator({ ...DEFAULT_LIMITS, maxRecordChars: 8 * 2 ** 20 });
    const t0 = performance.now();
    await pipeline(Readable.from(chunks), validator, drop()).catch(() => undefined);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

if (file === '--quoted') {
  const one = await quotedFieldMs(1);
  const four = await quotedFieldMs(4);
  console.log(`quoted field: 1 MiB ${one.toFixed(1)} ms, 4 MiB ${four.toFixed(1)} ms, ratio ${(four / one).toFixed(2)} (linear: ~4)`);
} else if (second === '--generate') {
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
  const rate = (ms: number): string => `${(size / 2 ** 20 / (ms / 1000)).toFixed(1)} MiB/s`;
  const cpuMs = (): number => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  /** Wall-clock and CPU ms of `work`. */
  const timed = async (work: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> => {
    const [t0, c0] = [performance.now(), cpuMs()];
    await work();
    return { wall: performance.now() - t0, cpu: cpuMs() - c0 };
  };
  for (let run = 0; run < Number(second ?? 1); run++) {
    const bare = await timed(() => bareRead(file));
    const validator = new CsvValidator();
    const checked = await timed(() => pipeline(createReadStream(file, { highWaterMark: 1 << 16 }), validator, drop()));
    console.log(
      `validator ${rate(checked.wall)} (${validator.rows} rows), bare reader ${rate(bare.wall)}: ${(bare.wall / checked.wall).toFixed(2)}×; ` +
        `by CPU time ${rate(checked.cpu)} against ${rate(bare.cpu)}: ${(bare.cpu / checked.cpu).toFixed(2)}×`,
    );
  }
}
