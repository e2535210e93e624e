import { Readable } from 'node:stream';
import fs from 'node:fs';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { notificationMessage, toCloudEvent } from '../../functions/core/notification.js';
import { text } from 'node:stream/consumers';
import { loadConfig } from '../../functions/core/config.js';
import { flushPending } from '../../functions/loader/flush.js';
import { acquireFlushLease } from '../../functions/loader/lease.js';
import { PendingFiles } from '../../functions/loader/pending.js';
import { loaderHandler } from '../../functions/loader/handler.js';
import { subscriptionFor } from '../../functions/core/topology.js';
import { createRuntime } from '../../functions/runtime.js';
import { canonicalOf } from '../support/canonical.js';
import { eventually, PROFILES, profileEnv, quietLogger, startTestPipeline, tempDir, type TestPipeline } from '../support/pipeline.js';

const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');
const count = async (p: TestPipeline): Promise<number> => {
  const res = await request(p.url).get('/getdata').query({ limit: 10000 });
  return res.body.rows.length;
};

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

describe('the loader', () => {
  it.each(PROFILES)('loads a notification delivered twice (and concurrently) only once (%s profile)', async (profile) => {
    p = await startTestPipeline({ env: profileEnv(profile) });
    const upload = await request(p.url).post('/upload').attach('file', Buffer.from(sample), 'a.csv');
    await eventually(async () => ((await request(p!.url).get(`/uploads/${upload.body.uploadId}`)).body.status === 'loaded' ? true : undefined));
    expect(await count(p)).toBe(300);

    const info = (await p.rt.store.stat(upload.body.object))!;
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    const event = toCloudEvent({ id: 'dup', data, attributes, publishTime: new Date().toISOString(), deliveryAttempt: 2 }, 'local', 't', 's');
    const load = loaderHandler(p.rt);
    await Promise.all([load(event as never), load(event as never), load(event as never)]);
    expect(await count(p)).toBe(300);
  });

  it('keeps an upload loaded when a late copy of its notification arrives while another flush holds the lease', async () => {
    p = await startTestPipeline();
    const upload = await request(p.url).post('/upload').attach('file', Buffer.from(sample), 'a.csv');
    await eventually(async () => ((await request(p!.url).get(`/uploads/${upload.body.uploadId}`)).body.status === 'loaded' ? true : undefined));
    const info = (await p.rt.store.stat(upload.body.object))!;
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    const lease = await acquireFlushLease(p.rt.store, { spacingMs: 0, ttlMs: 60_000 });
    try {
      await loaderHandler(p.rt)(toCloudEvent({ id: 'late', data, attributes, publishTime: '', deliveryAttempt: 3 }, 'l', 't', 's') as never);
      expect((await request(p.url).get(`/uploads/${upload.body.uploadId}`)).body).toMatchObject({ status: 'loaded', loadedRows: 300 });
    } finally {
      await lease!.release();
    }
  });

  it('ignores events that are not a finalized object under incoming/', async () => {
    p = await startTestPipeline();
    const upload = await request(p.url).post('/upload').attach('file', Buffer.from(sample), 'a.csv');
    await eventually(async () => ((await request(p!.url).get(`/uploads/${upload.body.uploadId}`)).body.status === 'loaded' ? true : undefined));
    const info = (await p.rt.store.stat(upload.body.object))!;
    const load = loaderHandler(p.rt);
    for (const [type, name] of [['OBJECT_DELETE', info.name], ['OBJECT_FINALIZE', 'staging/x.csv']] as const) {
      const msg = notificationMessage(type, { ...info, name, generation: '42' });
      await load(toCloudEvent({ id: type, ...msg, publishTime: '', deliveryAttempt: 1 }, 'l', 't', 's') as never);
    }
    expect(await count(p)).toBe(300);
  });

  it.each(PROFILES)('retries a file that cannot be loaded, then quarantines it with a readable reason, dead-letters it and marks the upload failed (%s profile)', async (profile) => {
    p = await startTestPipeline({ env: { ...profileEnv(profile), MAX_LOAD_FAILURES: '3', FLUSH_TICK_MS: '20' } });
    const dead: string[] = [];
    await p.rt.bus.subscribe({ ...subscriptionFor(p.rt.config, 'deadLetter'), name: 'test-dead-letters' }, async (m) => void dead.push(m.data.toString()));
    // A file that skipped ingest's validation: the warehouse refuses it on every attempt.
    const object = 'incoming/2013/01/01/poison.csv';
    await p.rt.ledger.create('poison', { uploadId: 'poison', status: 'stored', object, bytes: 10, rows: 1, sha256: '', createdAt: '', updatedAt: '' });
    await p.rt.store.write(object, Readable.from(['year,month\nnot,a number\n']), { metadata: { uploadId: 'poison' } });
    const record = await eventually(async () => {
      const r = await p!.rt.ledger.get('poison');
      return r?.status === 'failed' ? r : undefined;
    });
    expect(record.reason).toMatch(/^could not be loaded after 3 attempts: .+/);
    expect(await p.rt.store.stat(object)).toBeUndefined();
    expect(await p.rt.store.stat('quarantine/2013/01/01/poison.csv')).toBeDefined();
    const report = JSON.parse(await text(p.rt.store.read('quarantine/2013/01/01/poison.csv.report.json')));
    expect(report).toMatchObject({ object, uploadId: 'poison', failures: 3, reason: record.reason });
    await eventually(async () => (dead.length ? true : undefined));
    expect(JSON.parse(dead[0]!)).toMatchObject({ object, reason: record.reason });
    expect(await count(p)).toBe(0);
  });
});

describe('a quarantine cut short', () => {
  it('keeps the reason it was quarantined for when a crash left its marker after the file was gone', async () => {
    const rt = await createRuntime(loadConfig({ DATA_DIR: await tempDir() }), quietLogger());
    try {
      const dead: Record<string, string>[] = [];
      const publish = rt.bus.publish.bind(rt.bus);
      rt.bus.publish = async (topic, data, attributes = {}) => (topic === 'dead' ? String(dead.push(attributes)) : publish(topic, data, attributes));
      const flush = () => flushPending({ store: rt.store, bus: rt.bus, warehouse: rt.warehouse, ledger: rt.ledger, log: quietLogger(), settings: { spacingMs: 0, leaseMs: 10_000, maxBatchBytes: Infinity, maxFailures: 1, deadLetterTopic: 'dead' } });
      const object = 'incoming/2013/01/01/poison.csv';
      await rt.ledger.create('poison', { uploadId: 'poison', status: 'stored', object, bytes: 10, rows: 1, sha256: '', createdAt: '', updatedAt: '' });
      const info = await rt.store.write(object, Readable.from(['year,month\nnot,a number\n']), { metadata: { uploadId: 'poison' } });
      const pending = new PendingFiles(rt.store);
      const file = { object, generation: info.generation, uploadId: 'poison' };
      await pending.add(file);
      expect(await flush()).toMatchObject({ quarantined: 1 });
      const { reason } = (await rt.ledger.get('poison'))!;
      expect(reason).toMatch(/^could not be loaded after 1 attempts: .*not/s);
      const reportName = 'quarantine/2013/01/01/poison.csv.report.json';
      const report = await text(rt.store.read(reportName));

      // The state a kill between the quarantine's delete of the file and its removal of the marker leaves.
      await pending.add(file);
      await pending.recordFailure({ ...file, failures: 0 }, 'the error of the last attempt');
      expect(await flush()).toMatchObject({ quarantined: 1 });
      expect(await pending.list(10)).toEqual([]);
      expect(await text(rt.store.read(reportName))).toBe(report);
      expect(await rt.ledger.get('poison')).toMatchObject({ status: 'failed', reason });
      expect(dead.map((a) => a.reason)).toEqual([reason!.slice(0, 1024), reason!.slice(0, 1024)]);
    } finally {
      await rt.close();
    }
  });
});

describe('quota-aware batching', () => {
  const notify = async (p: TestPipeline, name: string, body: string) => {
    // Written straight to the store, with no bus subscriber running: the test delivers the notifications itself.
    const info = await p.rt.store.write(name, Readable.from([body]), { metadata: {} });
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    return toCloudEvent({ id: name, data, attributes, publishTime: '', deliveryAttempt: 1 }, 'l', 't', 's');
  };

  it('loads files that arrive while a flush is too recent in one job, and a poison file does not hold them back', async () => {
    const dataDir = await tempDir();
    const rt = await createRuntime(loadConfig({ DATA_DIR: dataDir, FLUSH_SPACING_MS: '3600000', MAX_LOAD_FAILURES: '1' }), quietLogger());
    try {
      const p = { rt } as TestPipeline;
      const canonical = await canonicalOf(sample);
      const load = loaderHandler(rt);
      await load((await notify(p, 'incoming/a/0.csv', canonical)) as never); // takes the lease, loads at once
      for (let i = 1; i <= 4; i++) await load((await notify(p, `incoming/a/${i}.csv`, canonical)) as never);
      await load((await notify(p, 'incoming/a/poison.csv', 'year\nx\n')) as never);
      const rows = async () => (await rt.warehouse.query({ select: ['year'], filters: [], order: [], limit: 100000 })).rows.length;
      expect(await rows()).toBe(300); // the other five wait for the spacing
      const report = await flushPending({ store: rt.store, bus: rt.bus, warehouse: rt.warehouse, ledger: rt.ledger, log: quietLogger(), settings: { spacingMs: 0, leaseMs: 10_000, maxBatchBytes: Infinity, maxFailures: 1, deadLetterTopic: 'dead' } });
      expect(report).toMatchObject({ ran: true, loaded: 4, quarantined: 1 });
      expect(report.jobs).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(5)));
      expect(await rows()).toBe(1500);
    } finally {
      await rt.close();
    }
  });
});
