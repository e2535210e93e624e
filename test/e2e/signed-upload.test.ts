import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import http from 'node:http';
import path from 'node:path';
import { createReadStream, createWriteStream } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { landingName } from '../../functions/core/landing.js';
import { newUploadId } from '../../functions/core/ids.js';
import { requestSignedUpload, resumeUpload, sessionOffset, startSession, uploadFile, type UploadProgress } from '../../tools/upload-client.js';
import { writeFlightsCsv } from '../support/flight-files.js';
import { eventually, startTestPipeline, tempDir, type TestPipeline } from '../support/pipeline.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

async function objectNames(p: TestPipeline, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of p.rt.store.list(prefix)) names.push(info.name);
  return names;
}

const statusOf = async (p: TestPipeline, uploadId: string) => (await request(p.url).get(`/uploads/${uploadId}`)).body as Record<string, any>;

function settled(p: TestPipeline, uploadId: string, timeoutMs = 120_000) {
  return eventually(async () => {
    const body = await statusOf(p, uploadId);
    return ['loaded', 'failed'].includes(body.status) ? body : undefined;
  }, timeoutMs, `upload ${uploadId} to settle`);
}

/**
 * Sends the first `sendBytes` of a `chunkBytes` chunk, waits until the server
 * has them on disk, then cuts the connection: a client that lost its network.
 */
async function interruptedChunk(p: TestPipeline, session: string, file: string, total: number, chunkBytes: number, sendBytes: number): Promise<void> {
  const part = path.join(p.dataDir, 'upload-sessions', `${new URL(session).pathname.split('/').pop()}.part`);
  const req = http.request(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${chunkBytes - 1}/${total}`, 'content-length': chunkBytes } });
  req.on('error', () => undefined);
  for await (const chunk of createReadStream(file, { start: 0, end: sendBytes - 1 })) {
    if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
  }
  await eventually(async () => ((await fs.stat(part)).size >= sendBytes / 2 ? true : undefined), 20_000, 'the server to keep part of the chunk');
  req.destroy();
}

describe('uploads of any size through a signed resumable URL (local bucket)', () => {
  let p: TestPipeline;
  let dir: string;
  beforeAll(async () => {
    p = await startTestPipeline();
    dir = await tempDir('flights-signed-');
  });
  afterAll(async () => {
    await p?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('takes a 200 MB file in chunks, survives a broken connection by resuming, and loads every row exactly once', async () => {
    const rows = 1_800_000;
    const file = path.join(dir, 'big.csv');
    await writeFlightsCsv(file, rows, 21);
    const size = (await fs.stat(file)).size;
    expect(size).toBeGreaterThan(200 * MiB);

    const signed = await requestSignedUpload(p.url, { fileName: 'big.csv', size, contentType: 'text/csv' });
    expect(signed.upload).toMatchObject({
      method: 'POST',
      headers: { 'x-goog-resumable': 'start', 'content-type': 'text/csv', 'x-upload-content-length': String(size), 'x-goog-if-generation-match': '0' },
    });
    const session = await startSession(signed.upload);
    expect((await statusOf(p, signed.uploadId)).status).toBe('awaiting');

    await interruptedChunk(p, session, file, size, 64 * MiB, 24 * MiB);
    const kept = await sessionOffset(session, size);
    expect(kept).toBeGreaterThanOrEqual(12 * MiB);
    expect(kept).toBeLessThanOrEqual(24 * MiB);

    const progress: UploadProgress[] = [];
    await resumeUpload(session, file, { chunkBytes: 32 * MiB, onProgress: (e) => progress.push(e) });
    expect(progress[0]).toEqual({ sent: kept, total: size });
    expect(progress.at(-1)).toEqual({ sent: size, total: size });

    const status = await settled(p, signed.uploadId, 180_000);
    expect(status).toMatchObject({ status: 'loaded', rows, loadedRows: rows, bytes: size, fileName: 'big.csv', contentType: 'text/csv', uploadUrlExpiresAt: signed.upload.expiresAt });
    const count = await request(p.url).get('/getdata').query({ _source_object: `eq.${status.object}`, count: 'exact', limit: 0 });
    expect(count.body.count).toBe(rows);
    expect(await objectNames(p, 'landing/')).toEqual([]);
    expect(await objectNames(p, 'incoming/')).toEqual([status.object]);
  }, 300_000);

  it('ends an invalid large file in quarantine/, with the line/column errors an inline upload gets, and nothing under incoming/', async () => {
    const file = path.join(dir, 'invalid.csv');
    await writeFlightsCsv(file, 320_000, 8, (line, text) => {
      const cells = text.split(',');
      if (line === 300_000) cells[2] = '13';
      if (line === 310_000) cells[10] = 'united';
      return cells.join(',');
    });
    const size = (await fs.stat(file)).size;
    expect(size).toBeGreaterThan(32_000_000);

    const { uploadId, mode } = await uploadFile(p.url, file);
    expect(mode).toBe('signed');
    const status = await settled(p, uploadId);
    expect(status).toMatchObject({ status: 'failed', errorCount: 2 });
    expect(status.errors).toEqual([
      expect.objectContaining({ line: 300_000, column: 3, field: 'month', value: '13' }),
      expect.objectContaining({ line: 310_000, column: 11, field: 'carrier', value: 'united' }),
    ]);
    expect(status.reason).toMatch(/2 fault\(s\).*line 300000, column 3/);

    // The same file inline answers with the same errors.
    const inline = await request(p.url).post('/upload').set('content-type', 'text/csv').send(await fs.readFile(file));
    expect(inline.status).toBe(422);
    expect(inline.body.errors).toEqual(status.errors);

    expect(await objectNames(p, `quarantine/landing/${uploadId}`)).toEqual([`quarantine/landing/${uploadId}.csv`, `quarantine/landing/${uploadId}.csv.report.json`]);
    expect((await p.rt.store.stat(`quarantine/landing/${uploadId}.csv`))?.size).toBe(size);
    expect((await objectNames(p, 'incoming/')).some((n) => n.includes(uploadId))).toBe(false);
    expect(await objectNames(p, 'landing/')).toEqual([]);
  }, 120_000);
});

describe('what a signed upload refuses (4xx, nothing under incoming/)', () => {
  const rows = 500;
  let p: TestPipeline;
  let file: string;
  let size: number;
  beforeAll(async () => {
    p = await startTestPipeline();
    file = path.join(await tempDir('flights-signed-small-'), 'small.csv');
    await writeFlightsCsv(file, rows, 4);
    size = (await fs.stat(file)).size;
  });
  afterAll(() => p?.stop());

  const intent = () => ({ fileName: 'small.csv', size, contentType: 'text/csv' });
  const start = (url: string, headers: Record<string, string>) => fetch(url, { method: 'POST', headers });
  const problemType = async (res: Response) => ((await res.json()) as { type: string }).type;

  it('refuses a tampered URL, an expired one, and another content type, size or method than was signed', async () => {
    const { upload } = await requestSignedUpload(p.url, intent());
    const longer = new URL(upload.url);
    longer.searchParams.set('expires', String(Number(longer.searchParams.get('expires')) + 86_400));
    const otherObject = new URL(upload.url.replace(/landing\/[0-9a-z]+\.csv/, `landing/${newUploadId()}.csv`));
    const unsigned = new URL(upload.url);
    unsigned.searchParams.set('headers', 'x-goog-resumable');

    for (const [url, headers] of [
      [longer.href, upload.headers],
      [otherObject.href, upload.headers],
      [unsigned.href, upload.headers],
      [upload.url, { ...upload.headers, 'content-type': 'application/octet-stream' }],
      [upload.url, { ...upload.headers, 'x-upload-content-length': String(size - 1) }],
      [upload.url, { ...upload.headers, 'x-goog-if-generation-match': '1' }],
    ] as const) {
      const res = await start(url, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await problemType(res)).toBe('/problems/signature-mismatch');
    }
    expect((await fetch(upload.url)).status).toBe(403);

    const stale = await p.rt.store.signedUrl(landingName(newUploadId()), { action: 'resumable', expiresAt: new Date(Date.now() - 1000), contentType: 'text/csv', contentLength: size, ifGenerationMatch: '0' });
    const expired = await start(stale.url, stale.headers);
    expect(expired.status).toBe(403);
    expect(await problemType(expired)).toBe('/problems/url-expired');
  });

  it('refuses more bytes than were signed for, keeping the session as it was', async () => {
    const { upload } = await requestSignedUpload(p.url, intent());
    const session = await startSession(upload);
    const body = Buffer.concat([await fs.readFile(file), Buffer.from('1,2013,1,1\n')]);
    const otherTotal = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${body.length - 1}/${body.length}` }, body });
    expect(otherTotal.status).toBe(400);
    expect(await problemType(otherTotal)).toBe('/problems/size-mismatch');
    const openTotal = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${body.length - 1}/*` }, body });
    expect(openTotal.status).toBe(400);
    expect(await problemType(openTotal)).toBe('/problems/upload-too-large');
    expect(await sessionOffset(session, size)).toBe(0);
    const garbled = await fetch(session, { method: 'PUT', headers: { 'content-range': 'bytes=0-' }, body: 'x' });
    expect(garbled.status).toBe(400);
    expect((await fetch(`${new URL(session).origin}/storage/sessions/${'0'.repeat(32)}`, { method: 'PUT', headers: { 'content-range': `bytes */${size}` } })).status).toBe(404);
  });

  it('takes no more bytes in a finished session, and ignores the URL used again: one upload, loaded once', async () => {
    const signed = await requestSignedUpload(p.url, intent());
    const session = await startSession(signed.upload);
    await resumeUpload(session, file);
    const status = await settled(p, signed.uploadId);
    expect(status).toMatchObject({ status: 'loaded', loadedRows: rows });

    const reuse = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${size - 1}/${size}` }, body: await fs.readFile(file) });
    expect(reuse.status).toBe(410);
    expect(await problemType(reuse)).toBe('/problems/session-finished');
    expect(await sessionOffset(session, size)).toBe('done');

    // The URL is still within its lifetime: a second upload through it lands, but is neither validated nor kept.
    const replay = await startSession(signed.upload);
    await resumeUpload(replay, file);
    await eventually(async () => ((await objectNames(p, 'landing/')).length === 0 ? true : undefined), 20_000, 'the replayed bytes to be dropped');
    expect((await objectNames(p, 'incoming/')).filter((n) => n.includes(signed.uploadId))).toEqual([status.object]);
    const count = await request(p.url).get('/getdata').query({ _source_object: `eq.${status.object}`, count: 'exact', limit: 0 });
    expect(count.body.count).toBe(rows);
  });

  it('refuses a bad description of the file with problem+json', async () => {
    const post = (body: unknown, type = 'application/json') => request(p.url).post('/uploads').set('content-type', type).send(typeof body === 'string' ? body : JSON.stringify(body));
    expect((await post('size=1', 'application/x-www-form-urlencoded')).status).toBe(415);
    for (const [body, field] of [
      ['{', 'body'],
      [{ ...intent(), size: 0 }, 'size'],
      [{ ...intent(), size: 1.5 }, 'size'],
      [{ ...intent(), size: 1e15 }, 'size'],
      [{ ...intent(), contentType: 'application/zip' }, 'contentType'],
      [{ ...intent(), sha256: 'abc' }, 'sha256'],
    ] as const) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.field).toBe(field);
    }
    expect((await request(p.url).get('/uploads')).status).toBe(405);
  });

  it('refuses a file whose SHA-256 is not the one declared, before it is stored', async () => {
    const signed = await requestSignedUpload(p.url, { ...intent(), sha256: 'f'.repeat(64) });
    await resumeUpload(await startSession(signed.upload), file);
    const status = await settled(p, signed.uploadId);
    expect(status).toMatchObject({ status: 'failed' });
    expect(status.reason).toMatch(/SHA-256/);
    expect((await objectNames(p, 'incoming/')).some((n) => n.includes(signed.uploadId))).toBe(false);
  });

  it('replays the first answer to a repeated Idempotency-Key instead of issuing a second upload', async () => {
    const post = () => request(p.url).post('/uploads').set('content-type', 'application/json').set('idempotency-key', 'batch-7').send(JSON.stringify(intent()));
    const first = await post();
    const again = await post();
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
  });

  it('takes gzip, and treats content already stored as a duplicate of that upload, as ingest does', async () => {
    const gz = `${file}.gz`;
    await pipeline(createReadStream(file), createGzip(), createWriteStream(gz));
    const gzSize = (await fs.stat(gz)).size;
    const signed = await requestSignedUpload(p.url, { fileName: 'small.csv.gz', size: gzSize, contentType: 'application/gzip' });
    const issued = await p.rt.signedUploads.get(signed.uploadId);
    await resumeUpload(await startSession(signed.upload), gz);
    const status = await eventually(async () => {
      const body = await statusOf(p, signed.uploadId);
      return ['loaded', 'duplicate', 'failed'].includes(body.status) ? body : undefined;
    });
    // The same CSV was stored by an earlier test in this suite: ingest's content index names it.
    // Reported as an inline duplicate is, and with its history as a signed upload: when its URL was issued and until when it held.
    expect(status).toMatchObject({
      status: 'duplicate',
      duplicateOfStatus: 'loaded',
      contentType: 'application/gzip',
      createdAt: issued!.createdAt,
      uploadUrlExpiresAt: signed.upload.expiresAt,
    });
    expect((await statusOf(p, status.duplicateOf)).status).toBe('loaded');
    expect((await objectNames(p, 'incoming/')).some((n) => n.includes(signed.uploadId))).toBe(false);
  });

  it('flights-cli uploads a file above its inline limit through the signed path', async () => {
    const other = path.join(path.dirname(file), 'cli.csv');
    await writeFlightsCsv(other, 300, 77);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'tools/flights-cli.ts', 'upload', other, '--url', p.url, '--inline-max', '1000']);
    const uploadId = stdout.trim();
    expect((await settled(p, uploadId)).loadedRows).toBe(300);
    await expect(fs.stat(`${other}.upload.json`)).rejects.toThrow();
  });

  it('leaves nothing under incoming/ for any refused upload', async () => {
    const incoming = await objectNames(p, 'incoming/');
    const loaded = await Promise.all(incoming.map(async (n) => (await p.rt.store.stat(n))?.metadata.uploadId));
    for (const id of loaded) expect((await statusOf(p, id!)).status).toBe('loaded');
    expect(await objectNames(p, 'staging/')).toEqual([]);
  });
});
