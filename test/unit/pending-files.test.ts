import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { PENDING_PREFIX, PendingFiles } from '../../functions/loader/pending.js';

let root: string;
let store: FsObjectStore;
let reads: string[];
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'pending-files-'));
  store = new FsObjectStore(root, 'b');
  reads = [];
  const read = store.read.bind(store);
  store.read = (name, options) => {
    reads.push(name);
    return read(name, options);
  };
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('PendingFiles', () => {
  it('lists pending files, oldest marker first, from the listing alone: no marker is read', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/a.csv', generation: '1', uploadId: 'u1', bytes: 10 });
    await pending.add({ object: 'incoming/b.csv', generation: '2', bytes: 20 });
    const [a] = await pending.list(10);
    await pending.recordHeld(a!, 'backendError');
    // The rewritten marker is the newer one now.
    expect(await pending.list(10)).toEqual([
      { object: 'incoming/b.csv', generation: '2', bytes: 20, failures: 0 },
      { object: 'incoming/a.csv', generation: '1', uploadId: 'u1', bytes: 10, failures: 0, held: 1, lastError: 'backendError' },
    ]);
    expect(reads).toEqual([]);
  });

  it('reads the markers whose fields are not in their metadata: one with an error too long for it, one written before', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/a.csv', generation: '1' });
    const [a] = await pending.list(10);
    const longError = 'x'.repeat(5000);
    await pending.recordFailure(a!, longError);
    const old = { object: 'incoming/old.csv', generation: '2', failures: 0 };
    await store.write(`${PENDING_PREFIX}old.json`, Buffer.from(JSON.stringify(old)), { contentType: 'application/json' });
    reads = [];
    expect(await pending.list(10)).toEqual([{ object: 'incoming/a.csv', generation: '1', failures: 1, lastError: longError }, old]);
    expect(reads).toHaveLength(2);
  });
});
