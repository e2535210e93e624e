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
import { Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { createLogger } from '../../functions/core/logger.js';
import type { ObjectStore } from '../../functions/core/ports.js';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { topology } from '../../functions/core/topology.js';
import { QUARANTINE_PREFIX } from '../../functions/loader/flush.js';
import { canonicalOf } from '../support/canonical.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, profileEnv, startTestPipeline, tempDir } from '../support/pipeline.js';
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
