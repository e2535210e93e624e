/**
 * A poison file: an object in incoming/ that the warehouse refuses on every
 * attempt. Ingest never stores one (it validates every row), but anyone with
 * write access to the bucket can put one there, bypassing it, as this test
 * does. The loader must try it exactly MAX_LOAD_FAILURES times, then move it
 * to quarantine/ with a reason a person can read, publish it to the
 * dead-letter topic, and meanwhile load every file uploaded behind it.
 *
 * Flushes run here only when a notification arrives (the flush tick is set to
 * an hour), so each upload behind the poison file costs it exactly one more
 * attempt: the order of events is fixed, not a race against a timer. The
 * attempts are counted from the loader's own log lines, one per failed load.
 */
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { createLogger } from '../../functions/core/logger.js';
import type { ObjectInfo, ObjectStore, WriteOptions } from '../../functions/core/ports.js';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { subscriptionFor, topology } from '../../functions/core/topology.js';
import { QUARANTINE_PREFIX } from '../../functions/loader/flush.js';
import { PENDING_PREFIX } from '../../functions/loader/pending.js';
import { startLocalPipeline } from '../../functions/local/pipeline.js';
import { createRuntime } from '../../functions/runtime.js';
import { canonicalOf } from '../support/canonical.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, profileEnv, PROFILES, startTestPipeline, tempDir } from '../support/pipeline.js';
import { send } from '../ingest/http.js';
import { reconcile, type Acknowledged } from './support/reconciliation.js';
import { startServer } from './support/server.js';

const POISON = 'incoming/2013/01/01/written-by-someone-else.csv';
const BAD_YEAR = 'MMXIII';
/** Flushes only on notifications: see the file's comment. */
const NO_TICK = { FLUSH_TICK_MS: '3600000' };

/** A canonical file, as the loader expects, but for a year the warehouse cannot read as an integer. */
async function poisonCsv(): Promise<Buffer> {
  const lines = (await canonicalOf(flightsCsv(5, 77))).split('\n');
  const year = CANONICAL_HEADER.indexOf('year');
  const cells = lines[2]!.split(',');
  cells[year] = BAD_YEAR;
  lines[2] = cells.join(',');
  return Buffer.from(lines.join('\n'));
}

/** The JSON log lines a server wrote, as they arrive. */
class LogLines {
  private text = '';
  add = (chunk: string): void => void (this.text += chunk);
  entries(): Record<string, unknown>[] {
    return this.text.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return []; // not JSON (the start banner), or a line still arriving
      }
    });
  }
  /** Deliveries of `object`'s notification the loader could not record, as it reported them. */
  unrecorded(object: string): number {
    return this.entries().filter((e) => e.message === 'notification not recorded; it will be redelivered' && e.object === object).length;
  }
  /** Load attempts of `object` that failed, as the loader reported them. */
  failedLoads(object: string): number {
    return this.entries().filter((e) => e.message === 'file failed to load' && e.object === object).length;
  }
}

interface Running {
  url: string;
  config: Config;
  dataDir: string;
  store: ObjectStore;
  log: LogLines;
  /** Dead letters about `object` on the dead-letter topic's retained subscription. */
  deadLetters(object: string): Promise<Record<string, string>[]>;
  stop(): Promise<void>;
}

let running: Running | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

const statusOf = async (url: string, uploadId: string): Promise<string> => ((await (await fetch(`${url}/uploads/${uploadId}`)).json()) as { status: string }).status;

/**
 * Uploads MAX_LOAD_FAILURES good files one after another behind the poison
 * file (whose first attempt has happened) and checks, after each, what has
 * been loaded and tried; returns the good files, acknowledged.
 */
async function uploadBehindThePoison(r: Running): Promise<Acknowledged[]> {
  const max = r.config.maxLoadFailures;
  const quarantined = `${QUARANTINE_PREFIX}${POISON.slice('incoming/'.length)}`;
  await eventually(async () => (r.log.failedLoads(POISON) === 1 ? true : undefined), 30_000, 'the first attempt of the poison file');
  const good: Acknowledged[] = [];
  for (let i = 1; i <= max; i++) {
    const reply = await send(r.url, flightsCsv(10 + i, 100 + i));
    expect(reply.status).toBe(201);
    good.push({ uploadId: reply.body.uploadId, object: reply.body.object, rows: reply.body.rows });
    await eventually(async () => ((await statusOf(r.url, reply.body.uploadId)) === 'loaded' ? true : undefined), 30_000, `good file ${i} to load`);
    // Its flush tried the poison file once more, until the last allowed attempt; never after.
    expect(r.log.failedLoads(POISON)).toBe(Math.min(i + 1, max));
    // Loaded while the poison file was still being retried: it was not stuck behind it.
    if (i + 1 < max) expect(await r.store.stat(quarantined)).toBeUndefined();
  }
  return good;
}

/** The poison file is in quarantine/ with a reason a person can read, gone from incoming/, and dead-lettered once. */
async function expectQuarantined(r: Running): Promise<void> {
  const max = r.config.maxLoadFailures;
  const quarantined = `${QUARANTINE_PREFIX}${POISON.slice('incoming/'.length)}`;
  const readable = new RegExp(`^could not be loaded after ${max} attempts: .*${BAD_YEAR}`, 's');
  const copy = await r.store.stat(quarantined);
  expect(copy?.metadata.reason).toMatch(readable);
  expect(await text(r.store.read(quarantined))).toBe((await poisonCsv()).toString());
  const report = JSON.parse(await text(r.store.read(`${quarantined}.report.json`))) as { object: string; failures: number; reason: string };
  expect(report).toMatchObject({ object: POISON, failures: max, reason: expect.stringMatching(readable) });
  expect(await r.store.stat(POISON)).toBeUndefined();
  const letters = await eventually(async () => {
    const found = await r.deadLetters(POISON);
    return found.length ? found : undefined;
  }, 30_000, 'the dead letter');
  expect(letters).toEqual([expect.objectContaining({ source: 'loader', objectId: POISON, reason: expect.stringMatching(readable) })]);
}

async function expectNothingLostOrDoubled(r: Running, good: Acknowledged[]): Promise<void> {
  await r.stop();
  running = undefined;
  const check = await reconcile(r.dataDir, r.config.bucket, good, []);
  expect(check).toMatchObject({ files: good.length, lost: 0, duplicated: 0, leftovers: [], unsettled: [] });
}

describe('a poison file in incoming/', () => {
  it('under npm start (the embedded bus): tried exactly MAX_LOAD_FAILURES times, quarantined with its reason, never blocking the uploads behind it', async () => {
    const dataDir = await tempDir();
    const config = loadConfig({ DATA_DIR: dataDir, ...NO_TICK });
    // Written while the server is down: its start-up reconciler finds it (a foreign write notifies nobody locally).
    const store = new FsObjectStore(path.join(dataDir, 'buckets'), config.bucket, { crossProcess: true });
    await store.write(POISON, await poisonCsv(), { contentType: 'text/csv' });
    const log = new LogLines();
    const server = await startServer(dataDir, { ...NO_TICK, LOG_LEVEL: 'info' }, log.add);
    const bus = new DurableLocalBus(path.join(dataDir, 'bus'));
    running = {
      url: server.url,
      config,
      dataDir,
      store,
      log,
      // The recorder logs every dead letter it receives; the retained subscription keeps it for an operator.
      deadLetters: async (object) => {
        const recorded = log.entries().filter((e) => e.event === 'dead_letter' && (e.attributes as Record<string, string>).objectId === object);
        if ((await bus.pending(topology(config).retained[0]!.name)) !== recorded.length) return [];
        return recorded.map((e) => e.attributes as Record<string, string>);
      },
      stop: () => server.stop(),
    };

    const good = await uploadBehindThePoison(running);
    await expectQuarantined(running);
    await expectNothingLostOrDoubled(running, good);
  }, 120_000);

  it('on the Pub/Sub emulator: the same, the dead letter on the emulator’s dead-letter topic', async () => {
    const env = { ...profileEnv('emulator'), ...NO_TICK };
    const log = new LogLines();
    const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _enc, done) => (log.add(chunk.toString()), done()) }));
    const p = await startTestPipeline({ env, log: logger });
    const admin = new PubSub({ projectId: 'demo', apiEndpoint: inject('pubsubEmulatorHost'), emulatorMode: true, universeDomain: 'googleapis.com' });
    const letters: Message[] = [];
    const retained = admin.subscription(topology(p.rt.config).retained[0]!.name).on('message', (m: Message) => {
      letters.push(m);
      m.ack();
    });
    running = {
      url: p.url,
      config: p.rt.config,
      dataDir: p.dataDir,
      store: p.rt.store,
      log,
      deadLetters: async (object) => letters.filter((m) => m.attributes.objectId === object).map((m) => m.attributes),
      stop: async () => {
        await retained.close();
        await admin.close();
        await p.stop();
      },
    };
    // Written through the bucket: its finalize notification goes to the emulator, as GCS's would.
    await p.rt.store.write(POISON, await poisonCsv(), { contentType: 'text/csv' });

    const good = await uploadBehindThePoison(running);
    await expectQuarantined(running);
    await expectNothingLostOrDoubled(running, good);
  }, 120_000);
});

/**
 * The bucket refusing the pending marker of one file, every time (the first file whose marker is
 * written): the loader cannot record that file's notification, so the bus redelivers it until its
 * dead-letter policy gives up. The first refusal waits for `release`, so the files behind it are
 * handled while that delivery is still in flight.
 */
class MarkerRefusingStore extends FsObjectStore {
  target: string | undefined;
  private held = false;
  private releaseHeld!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.releaseHeld = resolve));

  release(): void {
    this.releaseHeld();
  }

  override async write(name: string, source: Readable | Buffer, options?: WriteOptions): Promise<ObjectInfo> {
    if (name.startsWith(PENDING_PREFIX) && Buffer.isBuffer(source)) {
      const { object } = JSON.parse(source.toString('utf8')) as { object: string };
      this.target ??= object;
      if (object === this.target) {
        if (!this.held) {
          this.held = true;
          await this.gate;
        }
        throw new Error(`injected fault: the bucket refuses the pending marker of ${object}`);
      }
    }
    return super.write(name, source, options);
  }
}

describe.each(PROFILES)('a notification the loader fails on every delivery (%s profile)', (profile) => {
  it('is dead-lettered after exactly the subscription’s maxDeliveryAttempts, its upload failed with the count, while the uploads behind it load', async () => {
    const dataDir = await tempDir();
    const config = loadConfig({ DATA_DIR: dataDir, AUTH: 'off', MIN_BACKOFF_MS: '20', MAX_BACKOFF_MS: '100', ...profileEnv(profile) });
    const log = new LogLines();
    const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _enc, done) => (log.add(chunk.toString()), done()) }));
    const store = new MarkerRefusingStore(path.join(dataDir, 'buckets'), config.bucket);
    const rt = await createRuntime(config, logger, { store });
    const pipeline = await startLocalPipeline(rt, 0, '127.0.0.1');
    const admin = profile === 'emulator' ? new PubSub({ projectId: 'demo', apiEndpoint: inject('pubsubEmulatorHost'), emulatorMode: true, universeDomain: 'googleapis.com' }) : undefined;
    const letters: Record<string, string>[] = [];
    const retained = admin?.subscription(topology(config).retained[0]!.name).on('message', (m: Message) => {
      letters.push(m.attributes);
      m.ack();
    });
    running = {
      url: pipeline.url,
      config,
      dataDir,
      store,
      log,
      // The embedded bus: what the dead-letter recorder received; the emulator: the retained subscription.
      deadLetters: async (object) =>
        admin ? letters.filter((a) => a.objectId === object) : log.entries().filter((e) => e.event === 'dead_letter' && (e.attributes as Record<string, string>).objectId === object).map((e) => e.attributes as Record<string, string>),
      stop: async () => {
        store.release();
        await retained?.close();
        await admin?.close();
        await pipeline.close();
        await rt.close();
      },
    };
    const maxAttempts = subscriptionFor(config, 'loadFlights').maxDeliveryAttempts;

    const poison = await send(pipeline.url, flightsCsv(8, 200));
    expect(poison.status).toBe(201);
    await eventually(async () => (store.target ? true : undefined), 30_000, 'the first delivery of the poison notification');
    expect(store.target).toBe(poison.body.object);

    // Its first delivery is still in flight: the files behind it load.
    const good: Acknowledged[] = [];
    for (const seed of [201, 202]) {
      const reply = await send(pipeline.url, flightsCsv(9, seed));
      expect(reply.status).toBe(201);
      good.push({ uploadId: reply.body.uploadId, object: reply.body.object, rows: reply.body.rows });
      await eventually(async () => ((await statusOf(pipeline.url, reply.body.uploadId)) === 'loaded' ? true : undefined), 30_000, 'a file behind the poison notification to load');
    }
    expect(log.unrecorded(poison.body.object)).toBe(0);
    store.release();

    const failed = await eventually(async () => {
      const record = (await (await fetch(`${pipeline.url}/uploads/${poison.body.uploadId}`)).json()) as { status: string; reason?: string };
      return record.status === 'failed' ? record : undefined;
    }, 60_000, 'the poison upload to be failed by the dead-letter recorder');
    expect(failed.reason).toMatch(new RegExp(`^gave up after ${maxAttempts} attempts: `));
    const letter = await eventually(async () => (await running!.deadLetters(poison.body.object))[0], 30_000, 'the dead letter');
    expect(letter).toMatchObject({ CloudPubSubDeadLetterSourceDeliveryCount: String(maxAttempts), CloudPubSubDeadLetterSourceSubscription: config.loaderSubscription });
    // Counted by the loader itself: one line per delivery it could not record, and none after the last.
    expect(log.unrecorded(poison.body.object)).toBe(maxAttempts);
    expect(await running.deadLetters(poison.body.object)).toHaveLength(1);

    await running.stop();
    running = undefined;
    // The poison file's rows are not acknowledged as loaded: its upload says failed, with the reason above.
    const check = await reconcile(dataDir, config.bucket, good, []);
    expect(check).toMatchObject({ files: good.length, lost: 0, duplicated: 0, leftovers: [], unsettled: [] });
  }, 120_000);
});
