/**
 * Request-level behaviour: a slow or vanished client, an overloaded process,
 * a declared length over the limit, several files in one request. Each case
 * leaves nothing under incoming/ or staging/ and the server keeps serving.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger } from '../support/capturing-logger.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { HELD_UPLOAD_BYTES } from '../../functions/ingest/store-upload.js';
import { multipart, names, send, type Reply } from './http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const csv = Buffer.from(flightsCsv(20_000, 3)); // ~2.2 MB

/** Starts an upload that declares the whole file, sends the first half, and leaves the request open. */
function halfUpload(url: string, file = csv): { req: http.ClientRequest; reply: Promise<Reply> } {
  const req = http.request(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv', 'content-length': String(file.length) } });
  const reply = new Promise<Reply>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
  req.write(file.subarray(0, file.length / 2));
  return { req, reply };
}

async function nothingLeft(pipeline: TestPipeline): Promise<void> {
  expect(await names(pipeline.rt.store, 'incoming/')).toEqual([]);
  expect(await names(pipeline.rt.store, 'staging/')).toEqual([]);
  const tmp = path.join(pipeline.dataDir, 'buckets', 'flights-local', 'tmp');
  expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
}

/** The upload has reached the store: its staging write has begun. */
const stagingStarted = (pipeline: TestPipeline) =>
  eventually(async () => {
    const tmp = path.join(pipeline.dataDir, 'buckets', 'flights-local', 'tmp');
    return fs.existsSync(tmp) && fs.readdirSync(tmp).length > 0 ? true : undefined;
  });

describe('request limits', () => {
  it('stages a small file in memory and a large one under staging/, and leaves no staging object', async () => {
    p = await startTestPipeline();
    const written: string[] = [];
    const store = p.rt.store;
    const write = store.write.bind(store);
    store.write = (name, ...rest) => (written.push(name), write(name, ...rest));
    const small = await send(p.url, flightsCsv(100, 7));
    expect(small.status).toBe(201);
    expect(written.filter((n) => n.startsWith('staging/'))).toEqual([]);
    expect(written).toContain(small.body.object);
    const large = await send(p.url, csv);
    expect(large.status).toBe(201);
    expect(csv.length).toBeGreaterThan(HELD_UPLOAD_BYTES);
    expect(written.filter((n) => n.startsWith('staging/'))).toEqual([`staging/${large.body.uploadId}.csv`]);
    expect(await names(store, 'staging/')).toEqual([]);
    expect(await names(store, 'incoming/')).toEqual([small.body.object, large.body.object].sort());
  });

  it('an upload aborted half-way leaves nothing behind, and frees its slot', async () => {
    const { log, lines } = capturingLogger();
    p = await startTestPipeline({ log, env: { MAX_CONCURRENT_UPLOADS: '1' } });
    const { req, reply } = halfUpload(p.url);
    reply.catch(() => undefined);
    await stagingStarted(p);
    req.destroy();
    // Logged as the client leaving, not as an error of ours.
    await eventually(async () => (lines.some((l) => l.message === 'upload rejected: client went away') ? true : undefined));
    expect(lines.filter((l) => l.severity === 'ERROR')).toEqual([]);
    await eventually(async () => {
      const tmp = path.join(p!.dataDir, 'buckets', 'flights-local', 'tmp');
      return fs.readdirSync(tmp).length === 0 ? true : undefined;
    });
    await nothingLeft(p);
    expect((await send(p.url, csv)).status).toBe(201);
  });

  it('a small body, read whole, answers 408 when it stalls, and frees its slot when its client leaves half-way', async () => {
    const { log, lines } = capturingLogger();
    p = await startTestPipeline({ log, env: { MAX_CONCURRENT_UPLOADS: '1', UPLOAD_TIMEOUT_MS: '1000' } });
    const small = Buffer.from(flightsCsv(100, 9));
    const stalled = await halfUpload(p.url, small).reply;
    expect(stalled.status).toBe(408);
    expect(stalled.body.type).toBe('/problems/timeout');
    const { req, reply } = halfUpload(p.url, small);
    reply.catch(() => undefined);
    // In flight: the one slot is taken until the client leaves (a probe that came first is stored).
    let stored = 0;
    await eventually(async () => {
      const status = (await send(p!.url, flightsCsv(10, 4 + stored))).status;
      if (status === 201) stored += 1;
      return status === 429 ? true : undefined;
    });
    req.destroy();
    // Told apart from the timeout, which would free the slot too.
    await eventually(async () => (lines.some((l) => l.message === 'upload rejected: client went away') ? true : undefined));
    expect(lines.filter((l) => l.severity === 'ERROR')).toEqual([]);
    expect((await send(p.url, small)).status).toBe(201);
    // The stalled and the abandoned halves stored nothing.
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(stored + 1);
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
  });

  it('answers 429 with Retry-After while the uploads in flight are at the limit', async () => {
    p = await startTestPipeline({ env: { MAX_CONCURRENT_UPLOADS: '1' } });
    const slow = halfUpload(p.url);
    await stagingStarted(p);
    const refused = await send(p.url, flightsCsv(10, 4));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.type).toBe('/problems/overloaded');
    slow.req.end(csv.subarray(csv.length / 2));
    expect((await slow.reply).status).toBe(201);
    expect((await send(p.url, flightsCsv(10, 4))).status).toBe(201);
  });

  it('answers 408 to a client that stalls past the request timeout, and stores nothing', async () => {
    p = await startTestPipeline({ env: { UPLOAD_TIMEOUT_MS: '300' } });
    const { req, reply } = halfUpload(p.url);
    const res = await reply;
    expect(res.status).toBe(408);
    expect(res.body.type).toBe('/problems/timeout');
    req.destroy();
    await nothingLeft(p);
    expect((await send(p.url, flightsCsv(10, 4))).status).toBe(201);
  });

  it('answers 413 to a declared Content-Length over the limit before reading the body', async () => {
    p = await startTestPipeline({ env: { MAX_UPLOAD_BYTES: '1000000' } });
    const req = http.request(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv', 'content-length': String(2 ** 40) } });
    req.flushHeaders(); // headers only: were the body read, the answer would never come
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    expect(res.statusCode).toBe(413);
    req.destroy();
    // The cloud profile's limits, on the embedded adapters.
    const profile = await startTestPipeline({ env: { PROFILE: 'cloud', STORE: 'local', BUS: 'local', WAREHOUSE: 'duckdb', CURSOR_SECRET: 'test' } });
    const cloud = await send(profile.url, 'x', { 'content-length': '40000000' }).catch(() => undefined);
    await profile.stop();
    expect(cloud?.status).toBe(413);
    expect(cloud?.body.detail).toMatch(/32 MB.*large-file path/);
  });

  it('stores several files of one request, or none of them when one is invalid', async () => {
    p = await startTestPipeline();
    const good = multipart([{ fileName: 'a.csv', data: flightsCsv(10, 1) }, { fileName: 'b.csv.gz', contentType: 'application/gzip', data: (await import('node:zlib')).gzipSync(flightsCsv(10, 2)) }]);
    const ok = await send(p.url, good.body, { 'content-type': good.contentType });
    expect(ok.status).toBe(201);
    expect(ok.body.uploads.map((u: { rows: number }) => u.rows)).toEqual([10, 10]);
    expect(ok.headers.location).toBe(`/uploads/${ok.body.uploads[0].uploadId}`);

    const mixed = multipart([{ fileName: 'c.csv', data: flightsCsv(10, 3) }, { fileName: 'bad.csv', data: 'year\n2013\n' }]);
    const refused = await send(p.url, mixed.body, { 'content-type': mixed.contentType });
    expect(refused.status).toBe(422);
    expect(refused.body.file).toBe('bad.csv');
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(2);
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
  });
});
