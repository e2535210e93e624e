import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { DurableLocalBus, backoffMs } from '../../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { notificationMessage, toCloudEvent } from '../../functions/core/notification.js';
import { uploadLedger } from '../../functions/core/uploads.js';
import { loaderHandler } from '../../functions/loader/handler.js';
import type { Runtime } from '../../functions/runtime.js';
import { loadConfig } from '../../functions/core/config.js';
import type { BusMessage, SubscriptionSpec } from '../../functions/core/ports.js';
import { subscriptionFor } from '../../functions/core/topology.js';
import { eventually, quietLogger, tempDir } from '../support/pipeline.js';

const spec = (name = 'sub'): SubscriptionSpec => ({
  name,
  topic: 'objects',
  maxDeliveryAttempts: 3,
  deadLetterTopic: 'dead',
  minBackoffMs: 5,
  maxBackoffMs: 20,
});

const open: DurableLocalBus[] = [];
const bus = (dir: string) => {
  const b = new DurableLocalBus(dir, quietLogger());
  open.push(b);
  return b;
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

describe('the durable local bus', () => {
  it('delivers data and attributes, and forgets a message once acknowledged', async () => {
    const b = bus(await tempDir());
    const got: BusMessage[] = [];
    await b.subscribe(spec(), async (m) => void got.push(m));
    await b.publish('objects', Buffer.from('hello'), { eventType: 'OBJECT_FINALIZE' });
    await eventually(async () => (got.length === 1 ? true : undefined));
    expect(got[0]).toMatchObject({ attributes: { eventType: 'OBJECT_FINALIZE' }, deliveryAttempt: 1 });
    expect(got[0]!.data.toString()).toBe('hello');
    await eventually(async () => ((await b.pending('sub')) === 0 ? true : undefined));
  });

  it('redelivers a failed message with growing attempts, then dead-letters it with the reason', async () => {
    const b = bus(await tempDir());
    await b.createSubscription({ ...spec('dead-keeper'), topic: 'dead' });
    const attempts: number[] = [];
    await b.subscribe(spec(), async (m) => {
      attempts.push(m.deliveryAttempt);
      throw new Error(`boom ${m.deliveryAttempt}`);
    });
    const dead: BusMessage[] = [];
    await b.subscribe({ ...spec('dead-keeper'), topic: 'dead' }, async (m) => void dead.push(m));
    await b.publish('objects', Buffer.from('poison'), { objectId: 'incoming/x.csv' });
    await eventually(async () => (dead.length === 1 ? true : undefined));
    expect(attempts).toEqual([1, 2, 3]);
    expect(dead[0]!.data.toString()).toBe('poison');
    expect(dead[0]!.attributes).toMatchObject({
      objectId: 'incoming/x.csv',
      CloudPubSubDeadLetterSourceDeliveryCount: '3',
      CloudPubSubDeadLetterSourceSubscription: 'sub',
      CloudPubSubDeadLetterSourceLastError: 'boom 3',
    });
    expect(await b.pending('sub')).toBe(0);
  });

  it('keeps an unacknowledged message across a restart and delivers it to the next subscriber', async () => {
    const dir = await tempDir();
    const first = bus(dir);
    await first.createSubscription(spec());
    await first.publish('objects', Buffer.from('survivor'), {});
    let sawIt = false;
    const sub = await first.subscribe({ ...spec(), minBackoffMs: 500, maxBackoffMs: 500 }, async () => {
      sawIt = true;
      throw new Error('crash before ack');
    });
    await eventually(async () => (sawIt ? true : undefined));
    await sub.close();
    await first.close();

    const second = bus(dir);
    expect(await second.pending('sub')).toBe(1);
    const got: BusMessage[] = [];
    // The backoff written before the restart still applies; a fresh subscriber with no backoff override waits it out.
    await second.subscribe(spec(), async (m) => void got.push(m));
    await eventually(async () => (got.length ? true : undefined));
    expect(got[0]!.data.toString()).toBe('survivor');
    expect(got[0]!.deliveryAttempt).toBe(2);
  });

  it('counts a delivery cut short by a crash (no ack, no nack): the next subscriber sees it as attempt 2', async () => {
    const dir = await tempDir();
    const first = bus(dir);
    let release!: () => void;
    const hung = new Promise<void>((resolve) => (release = resolve));
    const attempts: number[] = [];
    await first.subscribe(spec(), async (m) => {
      attempts.push(m.deliveryAttempt);
      await hung;
    });
    await first.publish('objects', Buffer.from('cut short'), {});
    await eventually(async () => (attempts.length ? true : undefined));
    // As after a crash: the first process never answers; another subscriber reads the directory afresh.
    const got: BusMessage[] = [];
    await bus(dir).subscribe(spec('sub'), async (m) => void got.push(m));
    await eventually(async () => (got.length ? true : undefined));
    expect(got[0]!.data.toString()).toBe('cut short');
    expect(got[0]!.deliveryAttempt).toBe(2);
    release();
  });

  it('keeps the count of a message nacked by a bus that counted inside the file (a data directory from before)', async () => {
    const dir = await tempDir();
    const queue = path.join(dir, 'queues', 'sub');
    fs.mkdirSync(queue, { recursive: true });
    const id = '001764547200000-000001-0a1b2c3d';
    fs.writeFileSync(path.join(queue, `${id}.json`), JSON.stringify({ id, data: Buffer.from('old').toString('base64'), attributes: {}, publishTime: new Date().toISOString(), deliveryAttempt: 2, notBefore: 0 }));
    const got: BusMessage[] = [];
    await bus(dir).subscribe(spec(), async (m) => void got.push(m));
    await eventually(async () => (got.length ? true : undefined));
    expect(got[0]!.deliveryAttempt).toBe(3);
  });

  it('keeps nothing for a topic nobody subscribes to, like Pub/Sub', async () => {
    const b = bus(await tempDir());
    await b.createSubscription(spec());
    await b.publish('other-topic', Buffer.from('x'), {});
    expect(await b.pending('sub')).toBe(0);
  });

  it('keeps for the loader and the validator only the notifications under their prefixes, across a restart', async () => {
    const config = loadConfig({});
    const topic = config.notificationTopic;
    const loader = subscriptionFor(config, 'loadFlights');
    const validator = subscriptionFor(config, 'validateUpload');
    const dir = await tempDir();
    const first = bus(dir);
    await first.createSubscription(loader);
    await first.createSubscription(validator);
    // An empty filter keeps everything, as in Pub/Sub.
    await first.createSubscription({ ...spec('everything'), topic, filter: '' });
    await first.publish(topic, Buffer.from('l1'), { objectId: 'landing/x.csv' });
    await first.publish(topic, Buffer.from('i1'), { objectId: 'incoming/2024-01-01/y.csv' });
    const counts = async (b: DurableLocalBus) => [await b.pending(loader.name), await b.pending(validator.name), await b.pending('everything')];
    expect(await counts(first)).toEqual([1, 1, 2]);
    await first.close();

    // The filter is kept with the subscription: a bus that never created it still applies it.
    const second = bus(dir);
    await second.publish(topic, Buffer.from('l2'), { objectId: 'landing/z.csv' });
    expect(await counts(second)).toEqual([1, 2, 3]);
    const got: string[] = [];
    await second.subscribe(loader, async (m) => void got.push(m.data.toString()));
    await eventually(async () => ((await second.pending(loader.name)) === 0 ? true : undefined));
    expect(got).toEqual(['i1']);
  });

  it('keeps messages for a subscription another process made after it last listed the subscriptions', async () => {
    const dir = await tempDir();
    const publisher = bus(dir);
    await publisher.createSubscription(spec('first'));
    // As if the subscriptions had been made long ago, so the publisher may keep its listing.
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(dir, 'subscriptions'), past, past);
    await publisher.publish('objects', Buffer.from('one'), {});
    await publisher.publish('objects', Buffer.from('two'), {});
    expect(await publisher.pending('first')).toBe(2);

    await bus(dir).createSubscription(spec('second'));
    await publisher.publish('objects', Buffer.from('three'), {});
    expect([await publisher.pending('first'), await publisher.pending('second')]).toEqual([3, 1]);
  });

  it('refuses a filter it cannot apply when the subscription is made, and keeps nothing for it', async () => {
    const b = bus(await tempDir());
    await expect(b.createSubscription({ ...spec(), filter: 'hasSuffix(attributes.objectId, ".csv")' })).rejects.toThrow(/found hasSuffix/);
    await expect(b.subscribe({ ...spec(), filter: 'attributes.objectId = incoming' }, async () => undefined)).rejects.toThrow(/expected a string literal/);
    await b.publish('objects', Buffer.from('x'), { objectId: 'incoming/x.csv' });
    expect(await b.pending('sub')).toBe(0);
  });

  it('has at most maxOutstanding deliveries in flight, like Pub/Sub’s flow control, and delivers the backlog behind them in order', async () => {
    const b = new DurableLocalBus(await tempDir(), quietLogger(), 3);
    open.push(b);
    let inFlight = 0;
    let most = 0;
    const started: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await b.subscribe(spec(), async (m) => {
      started.push(m.data.toString());
      most = Math.max(most, ++inFlight);
      await held;
      inFlight -= 1;
    });
    for (let i = 0; i < 10; i++) await b.publish('objects', Buffer.from(String(i)));
    try {
      await eventually(async () => (started.length >= 3 ? true : undefined));
      // Every message is due; the others wait for a delivery to end.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(started).toEqual(['0', '1', '2']);
    } finally {
      release();
    }
    await eventually(async () => ((await b.pending('sub')) === 0 ? true : undefined));
    expect(started).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    expect(most).toBe(3);
  });

  it('lets the event loop turn while a backlog of due messages starts: what else arrives (an upload) is not held behind all of them', async () => {
    const b = bus(await tempDir());
    const events: string[] = [];
    await b.subscribe(spec(), async (m) => {
      // Queued as the first delivery starts: it runs at the loop's next turn, which must come before the last one starts.
      if (events.length === 0) setImmediate(() => events.push('turn'));
      events.push(m.data.toString());
    });
    for (let i = 0; i < 200; i++) await b.publish('objects', Buffer.from(String(i)));
    await eventually(async () => (events.length === 201 ? true : undefined));
    expect(events.indexOf('turn')).toBeLessThan(100);
    expect(events.filter((e) => e !== 'turn')).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it('backs off exponentially between the configured bounds', () => {
    expect([1, 2, 3, 4, 10].map((a) => backoffMs(a, { minBackoffMs: 10, maxBackoffMs: 50 }))).toEqual([10, 20, 40, 50, 50]);
  });
});

describe('what a waiting delivery holds', () => {
  const gc: () => void = (() => {
    v8.setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();
  const used = (): number => {
    gc();
    gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
  const N = 100;

  /** Bytes held per notification of `metadataBytes` of upload metadata, waiting in flight to the loader (its flush held) or backing off after a failed delivery. */
  async function heldPerDelivery(metadataBytes: number, waiting: 'in flight' | 'backing off'): Promise<number> {
    const dir = await tempDir();
    const b = bus(path.join(dir, 'bus'));
    const store = new FsObjectStore(path.join(dir, 'buckets'), 'b');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached = 0;
    const flush = (): Promise<void> => (reached++, waiting === 'in flight' ? held : Promise.reject(new Error('flush failed')));
    const rt = { store, bus: b, log: quietLogger(), ledger: uploadLedger(store), config: { deadLetterTopic: 'dead' }, flush } as unknown as Runtime;
    const loader = loaderHandler(rt);
    const s = { ...spec('loader'), minBackoffMs: 600_000, maxBackoffMs: 600_000 };
    await b.subscribe(s, (m) => loader(toCloudEvent(m, 'local', s.topic, s.name) as never));
    const before = used();
    const time = new Date().toISOString();
    for (let i = 0; i < N; i++) {
      const info = { bucket: 'b', name: `incoming/${i}.csv`, generation: String(1000 + i), metageneration: '1', size: 100, contentType: 'text/csv', timeCreated: time, updated: time };
      const { data, attributes } = notificationMessage('OBJECT_FINALIZE', { ...info, metadata: { uploadId: `up${i}`, note: String(i).padEnd(metadataBytes, 'x') } });
      await b.publish('objects', data, attributes);
    }
    await eventually(async () => (reached === N ? true : undefined));
    // A nack rewrites its message file after the handler failed: every one has, once none is in flight.
    const queue = path.join(dir, 'bus', 'queues', 'loader');
    const nacked = () => fs.readdirSync(queue).filter((f) => f.endsWith('.json') && JSON.parse(fs.readFileSync(path.join(queue, f), 'utf8')).notBefore > 0).length;
    if (waiting === 'backing off') await eventually(async () => (nacked() === N ? true : undefined));
    const bytes = (used() - before) / N;
    release();
    await b.close();
    return bytes;
  }

  // Copies of the notification a delivery keeps: the growth per delivery when each notification is 16 KiB longer.
  const copiesKept = async (waiting: 'in flight' | 'backing off'): Promise<number> => ((await heldPerDelivery(16_384, waiting)) - (await heldPerDelivery(0, waiting))) / 16_384;

  it('in flight to the loader while its flush runs: the notification once, as the bus delivered it (it was held seven times)', async () => {
    expect(await copiesKept('in flight')).toBeLessThan(1.5);
  });

  it('backing off after a failed delivery: none, the message file has it (it was held 1.4 times: in base64, and its attributes)', async () => {
    expect(await copiesKept('backing off')).toBeLessThan(0.5);
  });

  it('hands over data in memory of its own, not a slice of a shared pool a waiting delivery would keep whole', async () => {
    const b = bus(await tempDir());
    const got: BusMessage[] = [];
    await b.subscribe(spec(), async (m) => void got.push(m));
    await b.publish('objects', Buffer.from('{"name":"incoming/a.csv"}'));
    await eventually(async () => (got.length === 1 ? true : undefined));
    expect(got[0]!.data.buffer.byteLength).toBe(got[0]!.data.length);
  });
});
