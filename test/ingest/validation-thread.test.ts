/**
 * Where each upload is validated under the default VALIDATION_THREAD_MIN_BYTES, as an operator
 * sees it in /metrics (flights_ingest_validations_total{thread}): a file declared small stays on
 * the main thread, one declared large or of unknown length (chunked) goes to the worker thread;
 * inline and signed alike. Every upload is also checked to be stored whole, wherever it ran, and
 * one from the thread to be stored as exactly the canonical CSV the main thread would write.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VALIDATION_THREAD_MIN_BYTES } from '../../functions/core/config.js';
import { checkWhole, DEFAULT_LIMITS } from '../../functions/ingest/validator.js';
import { uploadFile } from '../../tools/upload-client.js';
import { writeFlightsCsv } from '../support/flight-files.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, tempDir, type TestPipeline } from '../support/pipeline.js';

type Thread = 'main' | 'worker';

describe('validation placed by the declared size of the upload', () => {
  let p: TestPipeline;
  let dir: string;
  let big: string;
  let bigRows: number;
  beforeAll(async () => {
    // Threads given explicitly, so that the test holds on a one-core machine too; the threshold is the default.
    p = await startTestPipeline({ env: { VALIDATION_THREADS: '1' } });
    dir = await tempDir('validation-thread-');
    big = path.join(dir, 'big.csv');
    bigRows = Math.ceil(VALIDATION_THREAD_MIN_BYTES / 100);
    await writeFlightsCsv(big, bigRows, 3);
    expect((await fs.stat(big)).size).toBeGreaterThan(VALIDATION_THREAD_MIN_BYTES);
  });
  afterAll(async () => {
    await p?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const validations = async (): Promise<Record<Thread, number>> => {
    const text = await (await fetch(`${p.url}/metrics`)).text();
    const count = (thread: Thread): number => Number(new RegExp(`^flights_ingest_validations_total\\{thread="${thread}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    return { main: count('main'), worker: count('worker') };
  };

  /** The change in the tally across `upload`, and what it answered. */
  async function placed<T>(upload: () => Promise<T>): Promise<{ result: T; main: number; worker: number }> {
    const before = await validations();
    const result = await upload();
    const after = await validations();
    return { result, main: after.main - before.main, worker: after.worker - before.worker };
  }

  const post = (body: Buffer | string | ReadableStream): Promise<Response> =>
    fetch(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body, duplex: 'half' } as RequestInit);

  it('keeps a small file with a Content-Length on the main thread', async () => {
    const { result, main, worker } = await placed(() => post(flightsCsv(100, 11)));
    expect(result.status).toBe(201);
    expect(await result.json()).toMatchObject({ rows: 100 });
    expect({ main, worker }).toEqual({ main: 1, worker: 0 });
  });

  it('sends a chunked body, whose size nobody declared, to the worker thread', async () => {
    const body = Readable.toWeb(Readable.from([Buffer.from(flightsCsv(100, 12))])) as ReadableStream;
    const { result, main, worker } = await placed(() => post(body));
    expect(result.status).toBe(201);
    expect(await result.json()).toMatchObject({ rows: 100 });
    expect({ main, worker }).toEqual({ main: 0, worker: 1 });
  });

  it('sends a file declared at least VALIDATION_THREAD_MIN_BYTES to the worker thread', async () => {
    const bytes = await fs.readFile(big);
    const { result, main, worker } = await placed(() => post(bytes));
    expect(result.status).toBe(201);
    expect(await result.json()).toMatchObject({ rows: bigRows });
    expect({ main, worker }).toEqual({ main: 0, worker: 1 });
  });

  it('stores exactly the canonical CSV of a file validated on the worker thread, with the SHA-256 of the file as sent', async () => {
    // Rows not uploaded before (the same rows again would be a duplicate), as generated and with the columns reversed.
    const file = (seed: number): Promise<Buffer> => writeFlightsCsv(path.join(dir, `canonical-${seed}.csv`), bigRows, seed).then(() => fs.readFile(path.join(dir, `canonical-${seed}.csv`)));
    const bytes = await file(21);
    // Every field of every row is moved.
    const reversed = Buffer.from(
      (await file(22))
        .toString()
        .split('\n')
        .map((line) => (line ? line.split(',').reverse().join(',') : line))
        .join('\n'),
    );
    for (const body of [bytes, reversed]) {
      const { result, worker } = await placed(() => post(body));
      expect(result.status).toBe(201);
      expect(worker).toBe(1);
      const stored = (await result.json()) as { object: string; sha256: string; rows: number };
      expect(stored).toMatchObject({ rows: bigRows, sha256: createHash('sha256').update(body).digest('hex') });
      const { canonical } = checkWhole(body, DEFAULT_LIMITS);
      const object = await buffer(p.rt.store.read(stored.object));
      expect(object.equals(Buffer.concat(canonical)), `${object.length} bytes stored, ${Buffer.concat(canonical).length} canonical`).toBe(true);
    }
  });

  it('places a signed upload by the size its URL was issued for', async () => {
    const small = path.join(dir, 'small.csv');
    await writeFlightsCsv(small, 100, 13);
    const other = path.join(dir, 'big-signed.csv');
    await writeFlightsCsv(other, bigRows, 14);
    for (const [file, rows, thread] of [[small, 100, 'main'], [other, bigRows, 'worker']] as const) {
      const { result, main, worker } = await placed(async () => {
        const { uploadId, mode } = await uploadFile(p.url, file, { inlineMaxBytes: 0 });
        expect(mode).toBe('signed');
        return eventually(async () => {
          const record = (await (await fetch(`${p.url}/uploads/${uploadId}`)).json()) as { status: string; rows?: number };
          return ['stored', 'loading', 'loaded', 'failed'].includes(record.status) ? record : undefined;
        }, 60_000, `signed upload ${uploadId} to be validated`);
      });
      expect(result).toMatchObject({ rows });
      expect({ main, worker }).toEqual(thread === 'main' ? { main: 1, worker: 0 } : { main: 0, worker: 1 });
    }
  });
});
