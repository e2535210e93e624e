import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsObjectStore, INLINE_OBJECT_BYTES, SMALL_OBJECT_BYTES } from '../../functions/adapters/local/fs-store.js';
import { ObjectNotFoundError, PreconditionFailedError } from '../../functions/core/ports.js';

let root: string;
let store: FsObjectStore;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-store-'));
  store = new FsObjectStore(root, 'b');
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const bytes = (n: number, seed = 1): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));
/** In chunks, as a network stream delivers them. */
const source = (b: Buffer): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / 65536) }, (_, i) => b.subarray(i * 65536, (i + 1) * 65536)));
const filesUnder = (dir: string): string[] => (fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()) : []);
/** Buffer.equals: toEqual walks large buffers element by element. */
const same = (actual: Buffer, expected: Buffer): void => expect(actual.equals(expected), `${actual.length} bytes vs ${expected.length}`).toBe(true);
const contentFiles = (): string[] => filesUnder(path.join(root, 'b', 'objects'));

describe('FsObjectStore', () => {
  // Small (inline in the metadata file, unless a CSV the warehouse reads by path), mid-sized (a content file written
  // in one call) and large (streamed through a temp file).
  for (const [size, contentType] of [0, 300, INLINE_OBJECT_BYTES + 1, SMALL_OBJECT_BYTES * 3 + 17].flatMap((n) => [[n, 'text/csv'], [n, 'application/json']] as const)) {
    it(`keeps ${size} bytes of ${contentType} exactly through write, read, copy and delete`, async () => {
      const data = bytes(size);
      const info = await store.write('a/x.csv', source(data), { contentType, metadata: { k: 'v' } });
      expect(info).toMatchObject({ name: 'a/x.csv', size, contentType, metadata: { k: 'v' } });
      expect(contentFiles()).toHaveLength(size <= INLINE_OBJECT_BYTES && contentType !== 'text/csv' ? 0 : 1);
      same(await buffer(store.read('a/x.csv')), data);
      same(await buffer(store.read('a/x.csv', { generation: info.generation })), data);
      same(fs.readFileSync(store.uri('a/x.csv', info.generation)), data);

      const copy = await store.copy('a/x.csv', 'b/y.csv', { ifGenerationMatch: '0' });
      await store.delete('a/x.csv');
      same(await buffer(store.read('b/y.csv')), data);
      expect(copy).toMatchObject({ size, md5Hash: info.md5Hash, contentType });
      await store.delete('b/y.csv');
      expect(contentFiles()).toEqual([]);
      expect(filesUnder(path.join(root, 'b', 'tmp'))).toEqual([]);
    });
  }

  it('stores a Buffer exactly as the same bytes streamed', async () => {
    for (const size of [0, 300, INLINE_OBJECT_BYTES + 1, SMALL_OBJECT_BYTES + 1]) {
      const data = bytes(size, 7);
      const streamed = await store.write(`s/${size}`, source(data), { contentType: 'text/csv', metadata: { k: 'v' } });
      const direct = await store.write(`d/${size}`, data, { contentType: 'text/csv', metadata: { k: 'v' } });
      expect(direct).toMatchObject({ size, md5Hash: streamed.md5Hash, contentType: 'text/csv', metadata: { k: 'v' } });
      same(await buffer(store.read(`d/${size}`)), data);
      await expect(store.write(`d/${size}`, data, { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
    }
  });

  it('gives each object the MD5 of its bytes, and none when the writer asks for none (a staging object), keeping the same bytes', async () => {
    for (const size of [300, SMALL_OBJECT_BYTES * 3 + 17]) {
      const data = bytes(size, 3);
      const md5 = createHash('md5').update(data).digest('base64');
      expect(await store.write(`m/${size}`, source(data))).toMatchObject({ md5Hash: md5 });
      expect(await store.write(`m/${size}.buffer`, data)).toMatchObject({ md5Hash: md5 });
      for (const [name, body] of [[`n/${size}`, source(data)], [`n/${size}.buffer`, data]] as const) {
        const info = await store.write(name, body, { md5: false, contentType: 'text/csv' });
        expect(info).toMatchObject({ size, contentType: 'text/csv' });
        expect(info.md5Hash).toBeUndefined();
        expect((await store.stat(name))?.md5Hash).toBeUndefined();
        same(await buffer(store.read(name)), data);
        expect((await store.copy(name, `c/${name}`)).md5Hash).toBeUndefined();
      }
    }
  });

  it('a replaced generation is gone, inline or not', async () => {
    for (const size of [10, SMALL_OBJECT_BYTES + 1]) {
      const first = await store.write(`r${size}`, source(bytes(size, 1)));
      // A stat just before the replacement: what it read of the first generation must not outlive it.
      expect((await store.stat(`r${size}`))?.generation).toBe(first.generation);
      await store.write(`r${size}`, source(bytes(size, 2)), { ifGenerationMatch: first.generation });
      await expect(buffer(store.read(`r${size}`, { generation: first.generation }))).rejects.toBeInstanceOf(ObjectNotFoundError);
      same(await buffer(store.read(`r${size}`)), bytes(size, 2));
    }
  });

  it('replacing an inline object removes the file uri() wrote out for it', async () => {
    const first = await store.write('u.csv', bytes(10, 1));
    const second = await store.write('u.csv', bytes(10, 2), { ifGenerationMatch: first.generation });
    expect(contentFiles()).toEqual([]);
    same(fs.readFileSync(store.uri('u.csv', second.generation)), bytes(10, 2));
    expect(contentFiles()).toHaveLength(1);
    await store.write('u.csv', bytes(10, 3), { ifGenerationMatch: second.generation });
    expect(contentFiles()).toEqual([]);
  });

  it('reads a small object whole with the description stat gives, inline or in a file of its own', async () => {
    for (const [name, contentType] of [['r.json', 'application/json'], ['f.csv', 'text/csv']] as const) {
      const data = bytes(300, 5);
      await store.write(name, data, { contentType });
      const found = await store.readSmall(name);
      same(found!.bytes, data);
      expect(found!.info).toEqual(await store.stat(name));
    }
    expect(await store.readSmall('none.json')).toBeUndefined();
    // Another process replaced the CSV between the metadata read and the bytes: not found, to be read again.
    fs.rmSync(store.uri('f.csv', (await store.stat('f.csv'))!.generation));
    await expect(store.readSmall('f.csv')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('a deleted object is gone, even to a read of the generation a stat just saw', async () => {
    const info = await store.write('d.json', Buffer.from('{"a":1}'));
    expect(await store.stat('d.json')).toMatchObject({ generation: info.generation });
    await store.delete('d.json');
    await expect(buffer(store.read('d.json', { generation: info.generation }))).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('refuses a write whose precondition fails and leaves no temp file', async () => {
    await store.write('p', source(bytes(5)));
    for (const size of [5, SMALL_OBJECT_BYTES + 1]) {
      await expect(store.write('p', source(bytes(size)), { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
    }
    expect(filesUnder(path.join(root, 'b', 'tmp'))).toEqual([]);
    same(await buffer(store.read('p')), bytes(5));
  });

  it('lists only names under the prefix, also one that ends inside a name', async () => {
    for (const name of ['in/2026/11/22/a.csv', 'in/2026/11/23/b.csv', 'in/2026/12/01/c.csv', 'out/d.csv', 'inx']) await store.write(name, source(bytes(3)));
    const list = async (prefix: string): Promise<string[]> => {
      const names: string[] = [];
      for await (const info of store.list(prefix)) names.push(info.name);
      return names;
    };
    expect(await list('in/2026/11/')).toEqual(['in/2026/11/22/a.csv', 'in/2026/11/23/b.csv']);
    expect(await list('in/2026/1')).toEqual(['in/2026/11/22/a.csv', 'in/2026/11/23/b.csv', 'in/2026/12/01/c.csv']);
    expect(await list('in')).toEqual(['in/2026/11/22/a.csv', 'in/2026/11/23/b.csv', 'in/2026/12/01/c.csv', 'inx']);
    expect(await list('nothing/')).toEqual([]);
  });

  it('reads a data directory written before small objects moved into their metadata file', async () => {
    // The earlier layout: metadata alone in meta/<name>.json, the bytes in objects/<name>#<generation>.
    const info = { bucket: 'b', name: 'uploads/old.json', generation: '1700000000000000', metageneration: '1', size: 7, contentType: 'application/json', metadata: {} };
    fs.mkdirSync(path.join(root, 'b', 'meta', 'uploads'), { recursive: true });
    fs.mkdirSync(path.join(root, 'b', 'objects', 'uploads'), { recursive: true });
    fs.writeFileSync(path.join(root, 'b', 'meta', 'uploads', 'old.json.json'), JSON.stringify(info));
    fs.writeFileSync(path.join(root, 'b', 'objects', 'uploads', `old.json#${info.generation}`), '{"a":1}');
    expect(await store.stat('uploads/old.json')).toEqual(info);
    expect((await buffer(store.read('uploads/old.json'))).toString()).toBe('{"a":1}');
    const next = await store.write('uploads/old.json', source(Buffer.from('{"a":2}')), { ifGenerationMatch: info.generation });
    expect((await buffer(store.read('uploads/old.json'))).toString()).toBe('{"a":2}');
    expect(next.generation > info.generation).toBe(true);
    expect(contentFiles()).toEqual([]);
  });

  it('lets timers and I/O run during a long run of calls that never wait for the disk', async () => {
    // A loader settling a large batch makes thousands of such calls in a row; uploads must not wait for the end.
    let callsBeforeTimer = -1;
    let calls = 0;
    setTimeout(() => (callsBeforeTimer = calls), 0);
    for (let i = 0; i < 100; i++) {
      await store.write(`k/${i}`, source(bytes(10)));
      await store.stat(`k/${i}`);
      calls++;
    }
    expect(callsBeforeTimer).toBeGreaterThanOrEqual(0);
    expect(callsBeforeTimer).toBeLessThan(100);
  });

  it('lets timers and I/O run while it lists a long prefix (a flush listing a thousand pending markers)', async () => {
    for (let i = 0; i < 1000; i++) await store.write(`m/${String(i).padStart(4, '0')}`, Buffer.from('{}'));
    let listedBeforeTurn = -1;
    let listed = 0;
    // Queued once the listing has its names (it reads the directory asynchronously first): the loop's next turn.
    for await (const info of store.list('m/')) {
      if (listed++ === 0) setImmediate(() => (listedBeforeTurn = listed));
      expect(info.name).toBe(`m/${String(listed - 1).padStart(4, '0')}`);
    }
    expect(listed).toBe(1000);
    expect(listedBeforeTurn).toBeGreaterThan(0);
    expect(listedBeforeTurn).toBeLessThan(1000);
  });
});

describe('FsObjectStore start-up cleanup', () => {
  const objects = (...parts: string[]): string => path.join(root, 'b', 'objects', ...parts);
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('removes content files a killed process left unreferenced, keeping live, inline uri() and fresh files', async () => {
    // Live objects: a CSV with its own file, a replaced one, an inline record whose uri() file was written out.
    const live = await store.write('in/live.csv', bytes(300, 1), { contentType: 'text/csv' });
    const first = await store.write('in/replaced.csv', bytes(300, 2), { contentType: 'text/csv' });
    const firstBytes = fs.readFileSync(store.uri('in/replaced.csv', first.generation));
    const replaced = await store.write('in/replaced.csv', bytes(300, 3), { contentType: 'text/csv', ifGenerationMatch: first.generation });
    const record = await store.write('r/rec.json', bytes(10, 4));
    const recordFile = store.uri('r/rec.json', record.generation);
    const deleted = await store.write('in/deleted.csv', bytes(300, 5), { contentType: 'text/csv' });
    const deletedBytes = fs.readFileSync(store.uri('in/deleted.csv', deleted.generation));
    await store.delete('in/deleted.csv');

    // What kills left: a replaced generation not yet removed, a new generation whose metadata never landed,
    // a deleted object's bytes, and a new object's bytes with no metadata at all.
    fs.writeFileSync(objects('in', `replaced.csv#${first.generation}`), firstBytes);
    fs.writeFileSync(objects('in', `live.csv#${BigInt(live.generation) + 1n}`), bytes(300, 6));
    fs.writeFileSync(objects('in', `deleted.csv#${deleted.generation}`), deletedBytes);
    fs.writeFileSync(objects('in', 'never.csv#1700000000000000'), bytes(300, 7));
    // Not a generation's file: left alone.
    fs.writeFileSync(objects('in', 'notes.txt'), 'x');
    fs.writeFileSync(objects('in', 'live.csv#draft'), 'x');

    await sleep(30); // file times come from a clock coarser than Date.now()
    const before = new Date();
    await sleep(30);
    // Another process sharing the directory, mid-commit: a new object's bytes, and a copy, whose hard link keeps the
    // source's old modification time (its change time is new).
    fs.writeFileSync(objects('in', `fresh.csv#${BigInt(live.generation) + 5n}`), bytes(300, 8));
    fs.linkSync(store.uri('in/live.csv', live.generation), objects('in', `copied.csv#${BigInt(live.generation) + 6n}`));

    const removed = await store.removeTempFiles(before);

    expect(contentFiles().sort()).toEqual(
      [
        `copied.csv#${BigInt(live.generation) + 6n}`,
        `fresh.csv#${BigInt(live.generation) + 5n}`,
        `live.csv#${live.generation}`,
        'live.csv#draft',
        'notes.txt',
        `replaced.csv#${replaced.generation}`,
      ]
        .map((f) => path.join('in', f))
        .concat(path.join('r', `rec.json#${record.generation}`))
        .sort(),
    );
    expect(removed).toBe(4);
    same(await buffer(store.read('in/live.csv')), bytes(300, 1));
    same(await buffer(store.read('in/replaced.csv')), bytes(300, 3));
    same(await buffer(store.read('r/rec.json')), bytes(10, 4));
    same(fs.readFileSync(recordFile), bytes(10, 4));
    expect(await store.stat('in/deleted.csv')).toBeUndefined();
    // A second start finds nothing more to remove.
    expect(await store.removeTempFiles(before)).toBe(0);
  });
});
