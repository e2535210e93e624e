/** The same file, or the same Idempotency-Key, never makes a second object or a second load. */
import request from 'supertest';
import { gzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { multipart, names, send } from './http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const csv = flightsCsv(50, 7);
const loaded = async (uploadId: string): Promise<void> =>
  void (await eventually(async () => ((await request(p!.url).get(`/uploads/${uploadId}`)).body.status === 'loaded' ? true : undefined)));
/** The same rows as another program would write them: columns in reverse order, CRLF line ends. */
function reorderedWithCrlf(text: string): string {
  const records = parse(text) as string[][];
  const field = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  return records.map((r) => [...r].reverse().map(field).join(',')).join('\r\n') + '\r\n';
}

const rowCount = async (): Promise<number> => (await request(p!.url).get('/getdata').query({ limit: 1000 })).body.rows.length;

describe('idempotent uploads', () => {
  it('the same rows twice → one object, one load; the second answer is 200 "duplicate", naming the first and its status', async () => {
    p = await startTestPipeline();
    const first = await request(p.url).post('/upload').attach('file', Buffer.from(csv), 'a.csv');
    expect(first.status).toBe(201);
    await loaded(first.body.uploadId);
    const second = await request(p.url).post('/upload').set('content-type', 'text/csv').send(csv);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'duplicate', duplicateOf: first.body.uploadId, duplicateOfStatus: 'loaded', object: first.body.object, rows: 50 });
    expect(second.body.uploadId).not.toBe(first.body.uploadId);
    expect(second.headers.location).toBe(`/uploads/${second.body.uploadId}`);
    expect((await request(p.url).get(`/uploads/${second.body.uploadId}`)).body).toEqual(second.body);
    // A gzipped copy, and the same rows with CRLF line ends and the columns in another order, are the same file:
    // content is identified by the canonical CSV ingest stores, not by the bytes on the wire.
    const gz = await send(p.url, gzipSync(csv), { 'content-encoding': 'gzip' });
    expect([gz.status, gz.body.status, gz.body.duplicateOf]).toEqual([200, 'duplicate', first.body.uploadId]);
    const rewritten = reorderedWithCrlf(csv);
    expect(rewritten).not.toBe(csv);
    const copy = await send(p.url, rewritten);
    expect([copy.status, copy.body.status, copy.body.duplicateOf]).toEqual([200, 'duplicate', first.body.uploadId]);

    expect(await names(p.rt.store, 'incoming/')).toEqual([first.body.object]);
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
    expect(await names(p.rt.store, 'uploads/')).toHaveLength(4);
    expect(await rowCount()).toBe(50);
  });

  it('two racing uploads of one file agree: exactly one is stored', async () => {
    p = await startTestPipeline();
    const replies = await Promise.all([1, 2, 3].map(() => send(p!.url, csv)));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    // A loser sees the winner's result (200), or, if the winner has not finished, 409 with Retry-After.
    for (const r of replies.filter((x) => x.status !== 201)) {
      expect([200, 409]).toContain(r.status);
      if (r.status === 409) expect(r.headers['retry-after']).toBe('1');
    }
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(1);
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
  });

  it('outside the window the same file is a new upload', async () => {
    p = await startTestPipeline({ env: { IDEMPOTENCY_WINDOW_SECONDS: '0' } });
    const a = await send(p.url, csv);
    const b = await send(p.url, csv);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.uploadId).not.toBe(a.body.uploadId);
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(2);
  });

  it('an Idempotency-Key repeat with the same files → 200 with the first answer, even in a new multipart envelope', async () => {
    p = await startTestPipeline();
    const first = await send(p.url, csv, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    const again = await send(p.url, gzipSync(csv), { 'idempotency-key': 'k-1', 'content-encoding': 'gzip' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const files = [{ fileName: 'x.csv', data: csv }, { fileName: 'y.csv', data: flightsCsv(3, 5) }];
    const form = multipart(files);
    const many = await send(p.url, form.body, { 'content-type': form.contentType, 'idempotency-key': 'k-2' });
    expect(many.status).toBe(201);
    expect(many.body.uploads).toHaveLength(2);
    // The same content as k-1's file: not stored again.
    expect(many.body.uploads[0]).toMatchObject({ status: 'duplicate', duplicateOf: first.body.uploadId });
    const reform = multipart(files); // another boundary: another body on the wire, the same payload
    expect((await send(p.url, reform.body, { 'content-type': reform.contentType, 'idempotency-key': 'k-2' })).body).toEqual(many.body);
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(2);
  });

  it('a key reused with another file → 422, and neither file is lost or swapped', async () => {
    p = await startTestPipeline();
    const first = await send(p.url, csv, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    const other = flightsCsv(5, 99);
    const reused = await send(p.url, other, { 'idempotency-key': 'k-1' });
    expect(reused.status).toBe(422);
    expect(reused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(reused.body.type).toBe('/problems/idempotency-key-reused');
    // One file more or one fewer is another payload too.
    const form = multipart([{ fileName: 'a.csv', data: csv }, { fileName: 'b.csv', data: other }]);
    expect((await send(p.url, form.body, { 'content-type': form.contentType, 'idempotency-key': 'k-1' })).status).toBe(422);
    // The second file, under a key of its own, is stored.
    expect((await send(p.url, other, { 'idempotency-key': 'k-other' })).status).toBe(201);
    await loaded(first.body.uploadId);
    expect(await names(p.rt.store, 'incoming/')).toHaveLength(2);
  });

  it('keys are scoped to the caller: two callers using one key each get their own upload', async () => {
    // The caller is who the gateway vouches for: here the API key's name.
    p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: 'alice:alice-key,bob:bob-key' } });
    const as = (who: string) => ({ 'idempotency-key': 'shared', 'x-api-key': `${who}-key` });
    const alice = await send(p.url, csv, as('alice'));
    const bob = await send(p.url, flightsCsv(4, 3), as('bob'));
    expect([alice.status, bob.status]).toEqual([201, 201]);
    expect(bob.body.uploadId).not.toBe(alice.body.uploadId);
    expect((await send(p.url, csv, as('alice'))).headers['idempotent-replayed']).toBe('true');
  });

  it('an API key the gateway passes on unnamed (as API Gateway does) still scopes the key, by its digest, from the header or ?key=', async () => {
    // With AUTH=off nothing names the caller, as in the cloud behind a key-only gateway.
    p = await startTestPipeline({ env: { AUTH: 'off' } });
    const alice = await send(p.url, csv, { 'idempotency-key': 'shared', 'x-api-key': 'alice-key' });
    const bob = await send(p.url, flightsCsv(4, 3), { 'idempotency-key': 'shared', 'x-api-key': 'bob-key' });
    expect([alice.status, bob.status]).toEqual([201, 201]);
    const aliceByQuery = await request(p.url).post('/upload?key=alice-key').set('idempotency-key', 'shared').set('content-type', 'text/csv').send(csv);
    expect(aliceByQuery.headers['idempotent-replayed']).toBe('true');
    expect(aliceByQuery.body.uploadId).toBe(alice.body.uploadId);
  });

  it('a failed upload releases its key, so the corrected file can be sent with the same key', async () => {
    p = await startTestPipeline();
    const bad = await send(p.url, csv.replace('2013,', '2013x,'), { 'idempotency-key': 'retry-me' });
    expect(bad.status).toBe(422);
    expect(await names(p.rt.store, 'idempotency/')).toEqual([]);
    const good = await send(p.url, csv, { 'idempotency-key': 'retry-me' });
    expect(good.status).toBe(201);
  });

  it('refuses a malformed Idempotency-Key', async () => {
    p = await startTestPipeline();
    const res = await send(p.url, csv, { 'idempotency-key': 'x'.repeat(256) });
    expect(res.status).toBe(400);
    expect(res.body.type).toBe('/problems/invalid-idempotency-key');
    expect(await names(p.rt.store, 'incoming/')).toEqual([]);
  });
});
