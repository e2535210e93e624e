/**
 * A resumable session whose process died right after the last byte: the bytes
 * are all in the part file, the object was never finalized. The next status
 * query, the next PUT, or the restart's recovery must finalize it, once.
 * And a landed file whose process died before its validation ended (its
 * notification never published, or its validation claim held by the dead
 * process) is validated by the restart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { ResumableSessions } from '../../functions/adapters/local/resumable.js';
import { signedUploadRecords } from '../../functions/core/landing.js';
import type { ObjectInfo } from '../../functions/core/ports.js';
import { requestSignedUpload } from '../../tools/upload-client.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { tempDir } from '../support/temp.js';

const bytes = Buffer.from('year,month,day\n2013,1,1\n'.repeat(50));

/** A session that received every byte and then lost its process: the part file is whole, no object exists. */
async function crashedAfterLastByte(): Promise<{ dir: string; store: FsObjectStore; id: string; finalized: ObjectInfo[] }> {
  const root = await tempDir();
  const store = new FsObjectStore(path.join(root, 'buckets'), 'b');
  const finalized: ObjectInfo[] = [];
  store.onFinalize(async (info) => void finalized.push(info));
  const dir = path.join(root, 'sessions');
  const id = await new ResumableSessions(dir, store).start('landing/u.csv', { contentType: 'text/csv', size: bytes.length, ifGenerationMatch: '0' });
  await fs.writeFile(path.join(dir, `${id}.part`), bytes);
  return { dir, store, id, finalized };
}

describe('a resumable session killed right after its last byte', () => {
  it('is finalized by the restart, once, with the bytes that arrived', async () => {
    const { dir, store, id, finalized } = await crashedAfterLastByte();
    const restarted = new ResumableSessions(dir, store);
    expect(await restarted.recover()).toEqual([id]);
    expect(await text(store.read('landing/u.csv'))).toBe(bytes.toString());
    expect(await restarted.recover()).toEqual([]);
    expect(await restarted.status(id)).toEqual({ done: true, object: finalized[0] });
    expect(finalized).toHaveLength(1);
    expect(await fs.readdir(dir)).toEqual([`${id}.json`]);
  });

  it('is finalized by the client’s status query or its repeated last PUT, instead of an offset mismatch', async () => {
    const a = await crashedAfterLastByte();
    const status = await new ResumableSessions(a.dir, a.store).status(a.id);
    expect(status).toEqual({ done: true, object: expect.objectContaining({ name: 'landing/u.csv', size: bytes.length }) });

    const b = await crashedAfterLastByte();
    const lastChunk = bytes.subarray(bytes.length - 100);
    const put = await new ResumableSessions(b.dir, b.store).append(b.id, { start: bytes.length - 100, total: bytes.length }, Readable.from([lastChunk]));
    expect(put.done).toBe(true);
    expect(await text(b.store.read('landing/u.csv'))).toBe(bytes.toString());
  });

  it('adopts the object when the process died after writing it but before the session recorded it', async () => {
    const { dir, store, id, finalized } = await crashedAfterLastByte();
    const written = await store.write('landing/u.csv', bytes, { contentType: 'text/csv', ifGenerationMatch: '0' });
    const restarted = new ResumableSessions(dir, store);
    expect(await restarted.recover()).toEqual([id]);
    expect(await restarted.status(id)).toEqual({ done: true, object: written });
    expect(finalized).toHaveLength(1); // no second generation
  });

  it('has its part file removed by the restart when the process died after recording the object but before removing it', async () => {
    const { dir, store, id } = await crashedAfterLastByte();
    const sessions = new ResumableSessions(dir, store);
    await sessions.status(id);
    await fs.writeFile(path.join(dir, `${id}.part`), bytes); // what the kill between the session's save and the removal leaves
    expect(await new ResumableSessions(dir, store).recover()).toEqual([]);
    expect(await fs.readdir(dir)).toEqual([`${id}.json`]);
  });

  it('does not take another object of the same name for its own', async () => {
    const { dir, store, id } = await crashedAfterLastByte();
    await store.write('landing/u.csv', Buffer.from('something else'), { ifGenerationMatch: '0' });
    await expect(new ResumableSessions(dir, store).status(id)).rejects.toMatchObject({ status: 412 });
  });
});

describe('a landed file whose process died before its validation ended', () => {
  let p: TestPipeline | undefined;
  afterEach(async () => {
    await p?.stop();
    p = undefined;
  });

  it('is validated by the restart: one whose notification was never published, one whose claim the dead process held', async () => {
    // A lease no test outlives: only the restart handing the claim back lets the second file through.
    const env = { VALIDATION_LEASE_MS: '3600000' };
    p = await startTestPipeline({ env });
    const { dataDir } = p;
    const files = [flightsCsv(14, 61), flightsCsv(9, 62)];
    const signed = await Promise.all(files.map((csv) => requestSignedUpload(p!.url, { size: Buffer.byteLength(csv), contentType: 'text/csv' })));
    await p.stop();
    // No notification listener: the object finalized, the process gone before it published.
    const store = new FsObjectStore(path.join(dataDir, 'buckets'), p.rt.config.bucket);
    const records = signedUploadRecords(store);
    for (const [i, s] of signed.entries()) {
      const record = (await records.get(s.uploadId))!;
      await store.write(record.object, Buffer.from(files[i]!), { contentType: 'text/csv', ifGenerationMatch: '0' });
    }
    await records.update(signed[1]!.uploadId, () => ({ status: 'validating', claim: { token: 'dead', expiresAt: new Date(Date.now() + 3_600_000).toISOString() } }));

    p = await startTestPipeline({ dataDir, env });
    for (const [i, s] of signed.entries()) {
      const status = await eventually(async () => {
        const body = (await request(p!.url).get(`/uploads/${s.uploadId}`)).body as { status: string };
        return ['loaded', 'failed'].includes(body.status) ? body : undefined;
      }, 60_000, `signed upload ${i} to settle`);
      expect(status).toMatchObject({ status: 'loaded', rows: [14, 9][i] });
    }
    const landing: string[] = [];
    for await (const info of p.rt.store.list('landing/')) landing.push(info.name);
    expect(landing).toEqual([]);
  }, 150_000);
});
