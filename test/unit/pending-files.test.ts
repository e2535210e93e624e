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

  it('gives due files up to the limit however many older ones back off, counting those it passed, from the listing alone', async () => {
    const pending = new PendingFiles(store);
    const now = Date.parse('2026-12-01T00:00:00Z');
    const backingOff = [];
    for (let i = 0; i < 5; i++) {
      await pending.add({ object: `incoming/held-${i}.csv`, generation: String(i) });
      backingOff.push(`incoming/held-${i}.csv`);
    }
    for (const file of await pending.list(10)) await pending.recordHeld(file, 'internalError', new Date(now + 60_000));
    await pending.add({ object: 'incoming/due-0.csv', generation: '10' });
    // One whose back-off has ended is due again.
    const [over] = (await pending.list(10)).filter((f) => f.object === 'incoming/held-0.csv');
    await pending.recordHeld(over!, 'internalError', new Date(now - 1));
    await pending.add({ object: 'incoming/due-1.csv', generation: '11' });
    await pending.add({ object: 'incoming/due-2.csv', generation: '12' });
    reads = [];

    // Four backing-off markers are the oldest (a rewrite makes a marker newer): the flush once took its list from `list`, and with a limit of 3 found only them.
    expect((await pending.list(3)).map((f) => f.object)).toEqual(backingOff.slice(1, 4));
    const due = await pending.due(3, now);
    expect(due.files.map((f) => f.object)).toEqual(['incoming/due-0.csv', 'incoming/held-0.csv', 'incoming/due-1.csv']);
    expect(due.waiting).toBe(4);
    expect((await pending.due(10, now)).files).toHaveLength(4);
    expect(reads).toEqual([]);
  });
});
