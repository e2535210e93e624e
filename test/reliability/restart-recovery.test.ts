/**
 * What a SIGKILL leaves in the data directory, and what the next `npm start`
 * must make of it before serving: claims of the dead process released (the
 * client's retry is accepted, not 409 for a day), even where its pid now runs
 * another process, records of files never
 * stored marked failed, orphaned staging/, temp and lock files removed, and an
 * incoming/ object whose notification was lost loaded. And what the cloud's
 * scheduled reconcile tick makes of work older than one upload timeout.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { processStart } from '../../functions/adapters/local/process-start.js';
import { newUploadId } from '../../functions/core/ids.js';
import { writeJson } from '../../functions/core/records.js';
import { uploadLedger, type IdempotencyEntry, type UploadRecord } from '../../functions/core/uploads.js';
import { incomingName } from '../../functions/ingest/store-upload.js';
import { flushHandler } from '../../functions/loader/handler.js';
import { NEVER_STORED, RECONCILE_TASK, reconcileOnSchedule } from '../../functions/loader/reconcile.js';
import { signedUploadRecords } from '../../functions/core/landing.js';
import type { ExportRecord } from '../../functions/core/exports.js';
import { parseExportRequest } from '../../functions/exports/request.js';
import { requestSignedUpload } from '../../tools/upload-client.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { names, send } from '../ingest/http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const deadHolder = (): string => `${os.hostname()}/${spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()}/dead`;
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const status = async (uploadId: string): Promise<UploadRecord> => (await request(p!.url).get(`/uploads/${uploadId}`)).body as UploadRecord;

describe('start-up recovery after a kill', () => {
  it('releases the dead process’s claims: the retry of the same file with the same key is accepted at once', async () => {
    p = await startTestPipeline();
    const { dataDir } = p;
    await p.stop();
    const store = new FsObjectStore(path.join(dataDir, 'buckets'), p.rt.config.bucket);
    const csv = flightsCsv(20, 3);
    const claimedAt = new Date().toISOString();
    // Killed mid-upload: the key and the content were claimed, nothing was finished.
    const abandoned: IdempotencyEntry<unknown> = { owner: 'u-dead', holder: deadHolder(), claimedAt };
    await writeJson(store, `idempotency/key/${sha256('anonymous\nretry-key')}.json`, abandoned, '0');
    await writeJson(store, `idempotency/sha256/${sha256(csv)}.json`, abandoned, '0');
    // The same, in a process that is alive: its claim is not taken from it.
    await writeJson(store, `idempotency/key/${sha256('anonymous\nlive-key')}.json`, { owner: 'u-live', holder: `${os.hostname()}/${process.ppid}/live`, claimedAt }, '0');
    // A dead process whose pid the kernel has since given to a live one (here, the parent): its start tells them apart.
    const reused = `${os.hostname()}/${process.ppid}/reused/${processStart(process.ppid)!.replace(/\d+$/, (ticks) => String(Number(ticks) - 1))}`;
    await writeJson(store, `idempotency/key/${sha256('anonymous\nreused-key')}.json`, { owner: 'u-reused', holder: reused, claimedAt }, '0');

    p = await startTestPipeline({ dataDir });
    const retry = await send(p.url, csv, { 'idempotency-key': 'retry-key' });
    expect(retry.status).toBe(201);
    expect((await send(p.url, flightsCsv(5, 9), { 'idempotency-key': 'live-key' })).status).toBe(409);
    expect((await send(p.url, flightsCsv(5, 10), { 'idempotency-key': 'reused-key' })).status).toBe(201);
  });

  it('marks a record of a file never stored failed, removes staging/, temp and lock leftovers, and loads an unannounced incoming/ object', async () => {
    p = await startTestPipeline();
    const first = await send(p.url, flightsCsv(30, 4));
    expect(first.status).toBe(201);
    await eventually(async () => ((await status(first.body.uploadId)).status === 'loaded' ? true : undefined));
    const { dataDir } = p;
    await p.stop();

    const root = path.join(dataDir, 'buckets');
    const store = new FsObjectStore(root, p.rt.config.bucket); // no notification listener: as if killed before it ran
    const ledger = uploadLedger(store);
    const now = new Date().toISOString();
    const record = (uploadId: string, object: string): UploadRecord => ({ uploadId, status: 'stored', object, bytes: 1, rows: 30, sha256: 'x', createdAt: now, updatedAt: now });
    const [ghost, lostId] = [newUploadId(), newUploadId()];
    // Killed between the record and the promotion: the object never existed.
    await ledger.create(ghost, record(ghost, `incoming/2026/01/01/${ghost}.csv`));
    // Killed between the promotion and the notification: the object exists, nothing announced it.
    const lost = `incoming/2026/01/01/${lostId}.csv`;
    await store.copy(first.body.object, lost, { metadata: { uploadId: lostId } });
    await ledger.create(lostId, record(lostId, lost));
    // Killed mid-stream: a staging object and a spilled temp file.
    await store.write('staging/dead.csv', Buffer.from('year\n'));
    const tmp = path.join(root, p.rt.config.bucket, 'tmp', 'deadbeef');
    await fs.mkdir(path.dirname(tmp), { recursive: true });
    await fs.writeFile(tmp, 'half a file');
    // Killed while taking an object's lock (with SHARED_DATA_DIR=1), and while breaking one whose holder had died.
    const [waiter, breaker] = [deadHolder().split('/')[1], deadHolder().split('/')[1]];
    const locks = path.join(root, p.rt.config.bucket, 'locks');
    const lockLeftovers = [`0a0b.lock.${waiter}-0a0b0c0d0e0f.claim`, `0a0b.lock.${breaker}-1a1b1c1d1e1f.claim`, `0a0b.lock.${waiter}-2a2b2c2d2e2f.break`];
    await fs.mkdir(locks, { recursive: true });
    for (const name of lockLeftovers) await fs.writeFile(path.join(locks, name), `${breaker}-1a1b1c1d1e1f`);

    p = await startTestPipeline({ dataDir });
    expect(await status(ghost)).toMatchObject({ status: 'failed', reason: NEVER_STORED });
    expect(await status(lostId)).toMatchObject({ status: 'loaded', loadedRows: 30 });
    const rows = await request(p.url).get('/getdata').query({ select: '_source_object,count()', limit: 10 });
    expect(rows.body.rows).toEqual(expect.arrayContaining([{ _source_object: lost, count: 30 }, { _source_object: first.body.object, count: 30 }]));
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
    await expect(fs.access(tmp)).rejects.toThrow();
    expect(await fs.readdir(locks)).toEqual([]);
  });

  it('the cloud’s reconcile tick (flushLoads with task=reconcile) loads an incoming/ object nobody announced, and a plain tick does not', async () => {
    p = await startTestPipeline({ env: { UPLOAD_TIMEOUT_MS: '1' } });
    const first = await send(p.url, flightsCsv(12, 8));
    await eventually(async () => ((await status(first.body.uploadId)).status === 'loaded' ? true : undefined));
    const silent = new FsObjectStore(path.join(p.dataDir, 'buckets'), p.rt.config.bucket);
    const lostId = newUploadId();
    const lost = incomingName(lostId);
    await silent.copy(first.body.object, lost, { metadata: { uploadId: lostId } });
    await new Promise((r) => setTimeout(r, 5)); // older than the (1 ms) upload timeout
    const tick = (attributes: Record<string, string>) =>
      flushHandler(p!.rt)({ id: 't', source: 's', specversion: '1.0', type: 'google.cloud.pubsub.topic.v1.messagePublished', data: { message: { data: '', attributes } } });
    const loadedRows = async () => (await request(p!.url).get('/getdata').query({ count: 'exact', limit: 1 })).body.count;
    await tick({});
    expect(await loadedRows()).toBe(12);
    await tick({ task: RECONCILE_TASK });
    expect(await loadedRows()).toBe(24);
    await tick({ task: RECONCILE_TASK }); // settled now: nothing more
    expect(await loadedRows()).toBe(24);
  });

  it('the cloud’s reconcile tick also takes up a landed signed upload and a running export older than the upload timeout; younger ones and a live validation are left alone', async () => {
    p = await startTestPipeline();
    const timeout = p.rt.config.ingest.requestTimeoutMs;
    // Written without notifications: the bucket's one lost, or dead-lettered after the instance validating the file stopped.
    const silent = new FsObjectStore(path.join(p.dataDir, 'buckets'), p.rt.config.bucket);
    const records = signedUploadRecords(silent);
    const files = [flightsCsv(11, 71), flightsCsv(7, 72), flightsCsv(5, 73)];
    const [old, live, young] = await Promise.all(files.map((csv) => requestSignedUpload(p!.url, { size: Buffer.byteLength(csv), contentType: 'text/csv' })));
    const land = async (uploadId: string, csv: string) => silent.write((await records.get(uploadId))!.object, Buffer.from(csv), { contentType: 'text/csv', ifGenerationMatch: '0' });
    await land(old!.uploadId, files[0]!);
    await land(live!.uploadId, files[1]!);
    // Another instance at work on `live`: its claim is within its lease.
    const liveClaim = { token: 'live', expiresAt: new Date(Date.now() + 3_600_000).toISOString() };
    await records.update(live!.uploadId, () => ({ status: 'validating', claim: liveClaim }));
    await new Promise((r) => setTimeout(r, 20));
    const landedLast = await land(young!.uploadId, files[2]!);
    // The tick runs when `young` is exactly one upload timeout old: not yet abandoned; the others are older.
    const now = new Date(Date.parse(landedLast.updated) + timeout);
    const runningExport = (createdAt: number): ExportRecord => {
      const { spec, columns } = parseExportRequest(new URLSearchParams('select=id,carrier'), '');
      const at = new Date(createdAt).toISOString();
      return { exportId: newUploadId(), status: 'running', query: spec, columns, createdAt: at, updatedAt: at };
    };
    // Recorded, never queued: the instance stopped between POST /exports's record and its publish.
    const [stranded, recent] = [runningExport(now.getTime() - timeout - 1000), runningExport(now.getTime() - timeout + 1000)];
    for (const record of [stranded, recent]) await p.rt.exports.create(record.exportId, record);

    expect(await reconcileOnSchedule(p.rt, now)).toMatchObject({ landedAnnounced: 1, exportsRequeued: 1 });

    const settledStatus = (uploadId: string) =>
      eventually(async () => {
        const body = (await request(p!.url).get(`/uploads/${uploadId}`)).body as { status: string };
        return ['loaded', 'failed'].includes(body.status) ? body : undefined;
      }, 60_000, `signed upload ${uploadId} to settle`);
    expect(await settledStatus(old!.uploadId)).toMatchObject({ status: 'loaded', rows: 11 });
    const done = await eventually(async () => {
      const body = (await request(p!.url).get(`/exports/${stranded.exportId}`)).body as { status: string };
      return body.status === 'running' ? undefined : body;
    }, 30_000, 'the stranded export to settle');
    expect(done).toMatchObject({ status: 'done', rows: 0 });

    expect((await request(p.url).get(`/exports/${recent.exportId}`)).body).toMatchObject({ status: 'running' });
    expect(await records.get(live!.uploadId)).toMatchObject({ status: 'validating', claim: liveClaim });
    expect(await records.get(young!.uploadId)).toMatchObject({ status: 'awaiting' });
    expect((await names(p.rt.store, 'landing/')).sort()).toEqual([(await records.get(live!.uploadId))!.object, (await records.get(young!.uploadId))!.object].sort());
  });
});

