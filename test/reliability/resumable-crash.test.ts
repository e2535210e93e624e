/**
 * A resumable session whose process died right after the last byte: the bytes
 * are all in the part file, the object was never finalized. The next status
 * query, the next PUT, or the restart's recovery must finalize it, once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { ResumableSessions } from '../../functions/adapters/local/resumable.js';
import type { ObjectInfo } from '../../functions/core/ports.js';
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

  it('does not take another object of the same name for its own', async () => {
    const { dir, store, id } = await crashedAfterLastByte();
    await store.write('landing/u.csv', Buffer.from('something else'), { ifGenerationMatch: '0' });
    await expect(new ResumableSessions(dir, store).status(id)).rejects.toMatchObject({ status: 412 });
  });
});
