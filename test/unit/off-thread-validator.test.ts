/**
 * The validator on a worker thread gives what it gives on the main thread:
 * the same canonical bytes and row count for a valid file however its chunks
 * fall, the same InvalidCsvError (faults with line and column, count, status)
 * for every file of the bad-file corpus; and it holds its writer back rather
 * than queue a file in memory when nobody reads its output.
 */
import fs from 'node:fs';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { OffThreadValidator, streamingValidator, validationPlace } from '../../functions/ingest/off-thread-validator.js';
import { CsvValidator, DEFAULT_LIMITS, InvalidCsvError } from '../../functions/ingest/validator.js';
import { flightsCsv } from '../support/generate-flights.js';

const THREADED = { ...DEFAULT_LIMITS, maxRows: 1000, validationThreads: 1 };
const { validationThreads: _none, ...IN_PROCESS } = THREADED;

type Outcome = { output: string; rows: number } | { error: { name: string; faults: unknown; faultCount: number; rows: number; status: number } };

const chunked = (bytes: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

async function outcome(validator: Transform & { rows: number }, chunks: Buffer[]): Promise<Outcome> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      out.push(chunk);
      done();
    },
  });
  try {
    await pipeline(Readable.from(chunks), validator, sink);
    return { output: Buffer.concat(out).toString(), rows: validator.rows };
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidCsvError);
    const { name, faults, faultCount, rows, status } = e as InvalidCsvError;
    return { error: { name, faults, faultCount, rows, status } };
  }
}

describe('OffThreadValidator', () => {
  it('is what the limits ask for: in process without validation threads, on a thread with them', () => {
    expect(streamingValidator(IN_PROCESS)).toBeInstanceOf(CsvValidator);
    const threaded = streamingValidator(THREADED);
    expect(threaded).toBeInstanceOf(OffThreadValidator);
    threaded.destroy();
    expect(streamingValidator({ ...THREADED, validationThreadMinBytes: 1000 }, 999)).toBeInstanceOf(CsvValidator);
  });

  it('puts a file on a thread when there are threads and it is declared at least the minimum, or not declared', () => {
    const min = { ...THREADED, validationThreadMinBytes: 4096 };
    expect(validationPlace(min, 4095)).toBe('main');
    expect(validationPlace(min, 4096)).toBe('worker');
    expect(validationPlace(min, undefined)).toBe('worker');
    // 0: every file on the thread, the smallest included.
    expect(validationPlace({ ...THREADED, validationThreadMinBytes: 0 }, 0)).toBe('worker');
    expect(validationPlace(THREADED, 1)).toBe('worker');
    // No threads: the main thread, whatever the size.
    for (const declared of [0, 1 << 30, undefined]) expect(validationPlace({ ...min, validationThreads: 0 }, declared)).toBe('main');
    expect(validationPlace(IN_PROCESS, undefined)).toBe('main');
  });

  it('writes the same canonical CSV and counts the same rows as on the main thread, however the chunks fall', async () => {
    // Several of the thread's chunk buffers (256 KiB) long, so that chunks are gathered into them, cut across them and held back.
    const csv = Buffer.from(flightsCsv(9000, 3));
    const expected = await outcome(new CsvValidator({ ...IN_PROCESS, maxRows: 9000 }), [csv]);
    expect(expected).toMatchObject({ rows: 9000 });
    for (const size of [1, 1000, 64 * 1024, 200 * 1024, 700 * 1024]) {
      const chunks = size === 1 ? chunked(csv.subarray(0, 4000), 1) : chunked(csv, size);
      const want = size === 1 ? await outcome(new CsvValidator(IN_PROCESS), chunks) : expected;
      expect(await outcome(new OffThreadValidator({ ...THREADED, maxRows: 9000 }), chunks)).toEqual(want);
    }
  });

  it('fails every file of the bad-file corpus with the same faults, lines and columns', async () => {
    const dir = new URL('../fixtures/bad/', import.meta.url);
    const files = fs.readdirSync(dir).filter((f) => f !== 'expected.json');
    const tooMany = Buffer.from(flightsCsv(1001, 4));
    let invalid = 0;
    for (const bytes of [...files.map((f) => fs.readFileSync(new URL(f, dir))), tooMany]) {
      const chunks = chunked(bytes, 700);
      const expected = await outcome(new CsvValidator(IN_PROCESS), chunks);
      expect(await outcome(new OffThreadValidator(THREADED), chunks)).toEqual(expected);
      if ('error' in expected) invalid += 1;
    }
    expect(invalid).toBeGreaterThanOrEqual(30);
  });

  it('holds its writer back while nobody reads its output, then finishes the file', async () => {
    const csv = Buffer.from(flightsCsv(60_000, 5)); // ~7 MB
    const validator = new OffThreadValidator({ ...THREADED, maxRows: 100_000 });
    let taken = 0;
    const chunks = chunked(csv, 64 * 1024);
    for (const chunk of chunks) validator.write(chunk, () => (taken += chunk.length));
    // Let the thread read all it is given and the output pile up unread, until nothing more is taken.
    for (let last = -1; taken !== last; ) {
      last = taken;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(2 * 2 ** 20);
    validator.end();
    let output = 0;
    await pipeline(
      validator,
      new Writable({
        write(chunk: Buffer, _e, done) {
          output += chunk.length;
          done();
        },
      }),
    );
    expect(validator.rows).toBe(60_000);
    expect(output).toBeGreaterThan(csv.length);
  });

  it('drops an upload destroyed half-way and goes on validating the next', async () => {
    const csv = Buffer.from(flightsCsv(800, 6));
    const abandoned = new OffThreadValidator(THREADED);
    const failed = new Promise((resolve) => abandoned.once('error', resolve));
    abandoned.write(csv.subarray(0, 50_000));
    abandoned.destroy(new Error('the client went away'));
    expect(await failed).toMatchObject({ message: 'the client went away' });
    const next = await outcome(new OffThreadValidator(THREADED), chunked(csv, 64 * 1024));
    expect(next).toMatchObject({ rows: 800 });
    expect(next).toEqual(await outcome(new CsvValidator(IN_PROCESS), [csv]));
  });
});
