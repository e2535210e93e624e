import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { uploadLedger, type UploadLedger, type UploadRecord } from '../../functions/core/uploads.js';
import { markLoaded, markLoading } from '../../functions/loader/upload-status.js';

let root: string;
let store: FsObjectStore;
let ledger: UploadLedger;
let reads: string[];
const now = new Date().toISOString();
const record = (uploadId: string): UploadRecord => ({ uploadId, status: 'stored', object: `incoming/${uploadId}.csv`, bytes: 10, rows: 1, sha256: 'f'.repeat(64), createdAt: now, updatedAt: now });

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-status-'));
  store = new FsObjectStore(root, 'b');
  ledger = uploadLedger(store);
  reads = [];
  const readSmall = store.readSmall.bind(store);
  store.readSmall = (name) => {
    reads.push(name);
    return readSmall(name);
  };
  await ledger.create('u1', record('u1'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the loader’s upload status', () => {
  it('goes stored → loading → loaded, reading the record once: `loaded` is written over the `loading` it wrote', async () => {
    await markLoading(ledger, 'u1', '7');
    expect(await ledger.get('u1')).toMatchObject({ status: 'loading', generation: '7' });
    reads.length = 0;
    const loaded = await markLoaded(ledger, 'u1', '7', 100);
    expect(reads).toEqual([]);
    expect(loaded).toMatchObject({ status: 'loaded', generation: '7', loadedRows: 100 });
    expect(await ledger.get('u1')).toEqual(loaded);
  });

  it('keeps a change someone else made in between: the write over the old generation fails, and the record is read and updated', async () => {
    await markLoading(ledger, 'u1', '7');
    await ledger.update('u1', () => ({ reason: 'attempt 1 failed: boom', fileName: 'kept.csv' }));
    await markLoaded(ledger, 'u1', '7', 100);
    const after = await ledger.get('u1');
    expect(after).toMatchObject({ status: 'loaded', generation: '7', loadedRows: 100, fileName: 'kept.csv' });
    expect(after?.reason).toBeUndefined();
  });

  it('keeps a `loaded` of the same generation when a late notification marks it loading, and loads a file it never marked', async () => {
    await markLoaded(ledger, 'u1', '7', 100);
    await markLoading(ledger, 'u1', '7');
    expect(await ledger.get('u1')).toMatchObject({ status: 'loaded', generation: '7', loadedRows: 100 });
    await ledger.create('u2', record('u2'));
    expect(await markLoaded(ledger, 'u2', '8', 5)).toMatchObject({ status: 'loaded', generation: '8', loadedRows: 5 });
    expect(await markLoaded(ledger, 'missing', '9', 5)).toBeUndefined();
  });
});
