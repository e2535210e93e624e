import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GcsObjectStore } from '../../functions/adapters/gcs/store.js';
import { ObjectNotFoundError, PreconditionFailedError } from '../../functions/core/ports.js';
import { FakeGcs } from '../support/fake-gcs.js';

const BUCKET = 'flights-test';
let fake: FakeGcs;
let store: GcsObjectStore;

beforeAll(async () => {
  fake = await new FakeGcs().start();
  store = new GcsObjectStore(BUCKET, new Storage({ apiEndpoint: fake.endpoint, projectId: 'demo', retryOptions: { maxRetries: 0 } }));
});
afterAll(() => fake.stop());
afterEach(() => {
  fake.requests.length = 0;
  fake.objects.clear();
});

/** Several chunks, so the upload is really streamed rather than one buffer. */
const csv = (rows: number) => Readable.from(Array.from({ length: rows }, (_, i) => Buffer.from(`${i},2013,1,1,UA\n`)));

describe('GcsObjectStore against the JSON API', () => {
  it('uploads through a resumable session with content type and custom metadata, and reads the same bytes back', async () => {
    const info = await store.write('staging/a b.csv', csv(500), { contentType: 'text/csv', metadata: { uploadId: 'u-1', rows: '500' } });

    const [start] = fake.find('POST', /^\/upload\/storage\/v1\/b\/flights-test\/o$/);
    expect(start?.query).toMatchObject({ uploadType: 'resumable', name: 'staging/a b.csv' });
    expect(start?.headers['x-upload-content-type']).toBe('text/csv');
    expect(JSON.parse(start?.body.toString() ?? '{}')).toMatchObject({ metadata: { uploadId: 'u-1', rows: '500' } });
    expect(fake.find('PUT', /^\/upload\//).every((r) => r.query.upload_id)).toBe(true);

    expect(info).toMatchObject({ bucket: BUCKET, name: 'staging/a b.csv', contentType: 'text/csv', metadata: { uploadId: 'u-1', rows: '500' } });
    expect(info.generation).toMatch(/^\d+$/);
    const expected = Buffer.concat(Array.from({ length: 500 }, (_, i) => Buffer.from(`${i},2013,1,1,UA\n`)));
    expect(info.size).toBe(expected.length);
    expect(await buffer(store.read('staging/a b.csv'))).toEqual(expected);
    expect(await buffer(store.read('staging/a b.csv', { generation: info.generation }))).toEqual(expected);
  });

  it('writes a Buffer in one multipart request, with its precondition, content type and metadata', async () => {
    const record = Buffer.from(JSON.stringify({ uploadId: 'u-2', status: 'stored' }));
    const info = await store.write('uploads/u-2.json', record, { contentType: 'application/json', metadata: { kind: 'record' }, ifGenerationMatch: '0' });

    const uploads = fake.find('POST', /^\/upload\//);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]?.query).toMatchObject({ uploadType: 'multipart', ifGenerationMatch: '0' });
    expect(fake.find('PUT', /^\/upload\//)).toEqual([]);
    expect(info).toMatchObject({ name: 'uploads/u-2.json', contentType: 'application/json', size: record.length, metadata: { kind: 'record' } });
    expect(await buffer(store.read('uploads/u-2.json'))).toEqual(record);
    await expect(store.write('uploads/u-2.json', record, { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('sends ifGenerationMatch on a conditional write and maps 412 to PreconditionFailedError', async () => {
    await store.write('final/x.csv', csv(1), { ifGenerationMatch: '0' });
    expect(fake.find('POST', /^\/upload\//)[0]?.query.ifGenerationMatch).toBe('0');
    await expect(store.write('final/x.csv', csv(2), { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(store.write('final/x.csv', Buffer.from('other'), { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
    // Same bytes, other metadata: someone else's object too.
    await expect(store.write('final/x.csv', csv(1), { ifGenerationMatch: '0', metadata: { uploadId: 'u-2' } })).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  describe('a conditional write whose first response was lost', () => {
    // The client's own retry policy, quick: it retries a conditional write on a reset connection.
    const retrying = () => new GcsObjectStore(BUCKET, new Storage({ apiEndpoint: fake.endpoint, projectId: 'demo', retryOptions: { maxRetries: 2, retryDelayMultiplier: 1, maxRetryDelay: 2 } }));

    it('is our success, not a lost race, when the retry meets our own object', async () => {
      fake.dropResponses = 1;
      const info = await retrying().write('incoming/u7.csv', Buffer.from('1,2013,1,1,UA\n'), { ifGenerationMatch: '0', contentType: 'text/csv', metadata: { uploadId: 'u7' } });

      expect(info).toMatchObject({ name: 'incoming/u7.csv', contentType: 'text/csv', metadata: { uploadId: 'u7' } });
      expect(info.generation).toBe(fake.objects.get(`${BUCKET}/incoming/u7.csv`)?.resource.generation);
      // The first attempt committed; the retry got 412; the object was read back.
      expect(fake.find('POST', /^\/upload\//)).toHaveLength(2);
      expect(fake.find('GET', /\/o\/incoming%2Fu7\.csv$/)).toHaveLength(1);
    });

    it('is our success when a retried promotion copy meets our own object', async () => {
      const staged = await store.write('staging/u8.csv', csv(3), { contentType: 'text/csv', metadata: { uploadId: 'u8' } });
      fake.dropResponses = 1;
      const promoted = await retrying().copy('staging/u8.csv', 'incoming/u8.csv', { ifGenerationMatch: '0', ifSourceGenerationMatch: staged.generation });
      expect(promoted).toMatchObject({ name: 'incoming/u8.csv', metadata: { uploadId: 'u8' }, size: staged.size });
      expect(fake.find('POST', /\/rewriteTo\//)).toHaveLength(2);
    });

    it('is still a lost race when the object there is not ours', async () => {
      await store.write('incoming/u6.csv', Buffer.from('theirs'), { ifGenerationMatch: '0', metadata: { uploadId: 'other' } });
      await expect(retrying().write('incoming/u6.csv', Buffer.from('ours'), { ifGenerationMatch: '0', metadata: { uploadId: 'u6' } })).rejects.toBeInstanceOf(PreconditionFailedError);
    });
  });

  it('promotes with ifGenerationMatch=0, keeps metadata, and refuses a second promote to the same name', async () => {
    const staged = await store.write('staging/u1.csv', csv(3), { contentType: 'text/csv', metadata: { uploadId: 'u1' } });
    const promoted = await store.copy('staging/u1.csv', 'flights/u1.csv', { ifGenerationMatch: '0', ifSourceGenerationMatch: staged.generation });

    const [rewrite] = fake.find('POST', /\/rewriteTo\//);
    expect(rewrite?.path).toBe(`/storage/v1/b/${BUCKET}/o/staging%2Fu1.csv/rewriteTo/b/${BUCKET}/o/flights%2Fu1.csv`);
    expect(rewrite?.query).toMatchObject({ ifGenerationMatch: '0', ifSourceGenerationMatch: staged.generation });
    expect(promoted).toMatchObject({ name: 'flights/u1.csv', contentType: 'text/csv', metadata: { uploadId: 'u1' }, size: staged.size });
    expect(promoted.generation).not.toBe(staged.generation);

    await store.write('staging/u9.csv', csv(4), { contentType: 'text/csv', metadata: { uploadId: 'u9' } });
    await expect(store.copy('staging/u9.csv', 'flights/u1.csv', { ifGenerationMatch: '0' })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await store.stat('flights/u1.csv'))?.generation).toBe(promoted.generation);
  });

  it('replaces custom metadata on copy when asked, and fails on a stale source generation', async () => {
    const staged = await store.write('staging/u2.csv', csv(1), { metadata: { state: 'staged' } });
    const copied = await store.copy('staging/u2.csv', 'flights/u2.csv', { metadata: { state: 'promoted' } });
    expect(copied.metadata).toEqual({ state: 'promoted' });
    await store.write('staging/u2.csv', csv(2));
    await expect(store.copy('staging/u2.csv', 'flights/u3.csv', { ifSourceGenerationMatch: staged.generation })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
  });

  it('maps a missing object to undefined on stat and ObjectNotFoundError elsewhere', async () => {
    expect(await store.stat('nope.csv')).toBeUndefined();
    await expect(store.copy('nope.csv', 'b.csv')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.delete('nope.csv')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(buffer(store.read('nope.csv'))).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('reads a small object whole with its description: its metadata, then that generation’s bytes', async () => {
    const record = Buffer.from(JSON.stringify({ uploadId: 'u-3', status: 'loaded' }));
    const written = await store.write('uploads/u-3.json', record, { contentType: 'application/json', ifGenerationMatch: '0' });
    fake.requests.length = 0;

    const found = await store.readSmall('uploads/u-3.json');
    expect(found?.bytes).toEqual(record);
    expect(found?.info).toMatchObject({ name: 'uploads/u-3.json', generation: written.generation, size: record.length });
    const gets = fake.find('GET', /^\/(download\/)?storage\/v1\/b\/flights-test\/o\/uploads%2Fu-3\.json$/);
    expect(gets.map((r) => r.query.alt ?? 'metadata')).toEqual(['metadata', 'media']);
    expect(gets[1]?.query.generation).toBe(written.generation);
    expect(await store.readSmall('uploads/none.json')).toBeUndefined();
  });

  it('deletes only the generation it was told to', async () => {
    const first = await store.write('d.csv', csv(1));
    const second = await store.write('d.csv', csv(2));
    await expect(store.delete('d.csv', { ifGenerationMatch: first.generation })).rejects.toBeInstanceOf(PreconditionFailedError);
    await store.delete('d.csv', { ifGenerationMatch: second.generation });
    expect(fake.find('DELETE', /d\.csv$/).map((r) => r.query.ifGenerationMatch)).toEqual([first.generation, second.generation]);
    expect(await store.stat('d.csv')).toBeUndefined();
  });

  it('lists every object under a prefix across pages', async () => {
    fake.pageSize = 2;
    try {
      for (const n of ['in/1.csv', 'in/2.csv', 'in/3.csv', 'out/1.csv', 'in/4.csv']) await store.write(n, csv(1));
      const names: string[] = [];
      for await (const info of store.list('in/')) names.push(info.name);
      expect(names).toEqual(['in/1.csv', 'in/2.csv', 'in/3.csv', 'in/4.csv']);
      expect(fake.find('GET', /^\/storage\/v1\/b\/flights-test\/o$/).length).toBeGreaterThan(1);
    } finally {
      fake.pageSize = 1000;
    }
  });

  it('aborting the signal leaves no object', async () => {
    const controller = new AbortController();
    const endless = new Readable({ read() { this.push(Buffer.alloc(1024, 'x')); } });
    const writing = store.write('aborted.csv', endless, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(writing).rejects.toThrow();
    expect(await store.stat('aborted.csv')).toBeUndefined();
  });

  it('names gs:// URIs', () => {
    expect(store.uri('flights/u1.csv', '123')).toBe(`gs://${BUCKET}/flights/u1.csv`);
  });
});
