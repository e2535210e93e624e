import { Readable } from 'node:stream';
import fs from 'node:fs';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { notificationMessage, toCloudEvent } from '../../functions/core/notification.js';
import { loaderHandler } from '../../functions/loader/handler.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

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
  it('loads a notification delivered twice (and concurrently) only once', async () => {
    p = await startTestPipeline();
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

  it('retries a file that cannot be loaded, then dead-letters it and marks the upload failed with the reason', async () => {
    p = await startTestPipeline({ env: { MAX_DELIVERY_ATTEMPTS: '3' } });
    // A file that skipped ingest's validation: the warehouse refuses it on every attempt.
    await p.rt.ledger.create({
      uploadId: 'poison', status: 'stored', object: 'incoming/2013/01/01/poison.csv', bytes: 10, rows: 1, sha256: '', createdAt: '', updatedAt: '',
    });
    await p.rt.store.write('incoming/2013/01/01/poison.csv', Readable.from(['year,month\nnot,a number\n']), { metadata: { uploadId: 'poison' } });
    const record = await eventually(async () => {
      const r = await p!.rt.ledger.get('poison');
      return r?.status === 'failed' ? r : undefined;
    });
    expect(record.reason).toMatch(/^gave up after 3 attempts: .+/);
    expect(await count(p)).toBe(0);
    expect(await (p.rt.bus as unknown as { pending(s: string): Promise<number> }).pending(p.rt.config.loaderSubscription)).toBe(0);
  });
});
