/**
 * Requests built to hurt: each gets its own 4xx problem (or, for our own
 * fault, its own 500), nothing is left staged, and the server keeps serving.
 * An error event without a listener would surface here as Vitest's
 * "unhandled error", which fails the run.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightsCsv } from '../support/generate-flights.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { multipart, names, send } from './http.js';

let p: TestPipeline;
beforeAll(async () => {
  p = await startTestPipeline();
});
afterAll(() => p.stop());

const sample = flightsCsv(50, 11);

async function stillServing(): Promise<void> {
  const ok = await send(p.url, flightsCsv(20, Math.floor(Math.random() * 1e9)));
  expect(ok.status).toBe(201);
  expect(await names(p.rt.store, 'staging/')).toEqual([]);
}

describe('hostile uploads', () => {
  it.each(['image/png', 'text/html'])('answers 415 to a file part declared %s, and keeps serving', async (type) => {
    const { body, contentType } = multipart([{ fileName: 'flights.csv', contentType: type, data: sample }]);
    const reply = await send(p.url, body, { 'content-type': contentType });
    expect(reply.status).toBe(415);
    expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(reply.body.detail).toContain(type);
    await stillServing();
  });

  it('answers 400 to a multipart body cut off inside a file part that is not `file`, and keeps serving', async () => {
    const { body, contentType } = multipart([
      { field: 'attachment', fileName: 'notes.txt', contentType: 'text/plain', data: 'x'.repeat(4000) },
      { data: sample },
    ]);
    const reply = await send(p.url, body.subarray(0, 2000), { 'content-type': contentType });
    expect(reply.status).toBe(400);
    expect(reply.body.type).toMatch(/malformed-multipart$/);
    await stillServing();
  });

  it('refuses a quoted field longer than a record may be with 422 naming its line, and keeps serving', async () => {
    const [header, first] = sample.split('\n');
    const runaway = `"${'say ""hi""\n'.repeat(200_000)}"`; // 2 MiB, its quotes doubled all along
    const reply = await send(p.url, `${header}\n${first}\n${runaway},${first!.slice(first!.indexOf(',') + 1)}\n`);
    expect(reply.status).toBe(422);
    expect(reply.body.errors[0]).toMatchObject({ line: 3, column: 1 });
    expect(reply.body.detail).toContain('line 3');
    await stillServing();
  });

  it('refuses a zip bomb by its ratio to the bytes sent, long before the absolute bound, and keeps serving', async () => {
    const [header, row] = sample.split('\n');
    const rows = Buffer.from(`${row}\n`.repeat(2 ** 20 / (row!.length + 1)));
    const bomb = gzipSync(Buffer.concat([Buffer.from(`${header}\n`), ...Array.from({ length: 16 }, () => rows)]), { level: 9 }); // 16 MiB of valid rows
    for (const [headers, body] of [
      [{ 'content-encoding': 'gzip' }, bomb],
      [{ 'content-type': 'application/gzip' }, bomb],
      ...[multipart([{ fileName: 'bomb.csv.gz', data: bomb }])].map((m) => [{ 'content-type': m.contentType }, m.body] as const),
    ] as const) {
      const reply = await send(p.url, body, headers);
      expect(reply.status).toBe(413);
      expect(reply.body).toMatchObject({ type: expect.stringMatching(/too-large$/), limit: 20 });
      expect(reply.body.detail).toContain('zip bomb');
      expect(reply.body.decompressedBytes).toBeLessThan(8 * 2 ** 20);
    }
    await stillServing();
  });

  it('tells a client that sent gzip without saying so how to declare it, on the body and in a part', async () => {
    const gz = gzipSync(sample);
    const { body, contentType } = multipart([{ fileName: 'flights.csv', data: gz }]);
    for (const reply of [await send(p.url, gz), await send(p.url, body, { 'content-type': contentType })]) {
      expect(reply.status).toBe(415);
      expect(reply.body.type).toMatch(/undeclared-gzip$/);
      expect(reply.body.detail).toContain('Content-Encoding: gzip');
    }
    // Declared, the same bytes are the sample.
    expect((await send(p.url, gz, { 'content-encoding': 'gzip' })).status).toBe(201);
    await stillServing();
  });

  it('answers 400 to a multipart body cut off inside the file, and keeps serving', async () => {
    const { body, contentType } = multipart([{ data: sample }]);
    const reply = await send(p.url, body.subarray(0, body.length >> 1), { 'content-type': contentType });
    expect(reply.status).toBe(400);
    expect(reply.body.type).toMatch(/malformed-multipart$/);
    await stillServing();
  });
});
