/**
 * Reliability scenarios under `npm run start:emulators`: the real Pub/Sub
 * emulator pushing to real functions-framework processes over the shared
 * filesystem bucket and DuckDB warehouse.
 * - a loader process SIGKILLed at four points (before a load, during it
 *   (before its COMMIT), after it and before the ack, after the ack), through
 *   the test-only crash points (functions/core/crash-point.ts); start:emulators
 *   restarts it and Pub/Sub redelivers;
 * - each notification pushed to the loader 1–5 times, shuffled;
 * - start-up recovery and the reconcile tick loading incoming/ objects whose
 *   notification never came.
 * Each ends with the reconciliation (support/reconciliation.ts) and prints a
 * `reliability:` line, as docs/reliability.md reports them. `npm test` runs
 * one kill per point; `npm run test:reliability` (RELIABILITY_KILLS=50) five.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import type { CrashPoint } from '../../functions/core/crash-point.js';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { notificationMessage } from '../../functions/core/notification.js';
import type { ObjectInfo } from '../../functions/core/ports.js';
import { pushPath } from '../../functions/core/topology.js';
import { uploadLedger } from '../../functions/core/uploads.js';
import { newUploadId } from '../../functions/core/ids.js';
import { incomingName } from '../../functions/ingest/store-upload.js';
import { PENDING_PREFIX } from '../../functions/loader/pending.js';
import { canonicalOf } from '../support/canonical.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, profileEnv, tempDir } from '../support/pipeline.js';
import { uploadUntilAnswered } from './support/client.js';
import { reconcileRunning, reconcileSettled, startEmulators, type EmulatorSet } from './support/emulators.js';
import { reconcile, type Acknowledged, type Reconciliation } from './support/reconciliation.js';

const KILLS_PER_POINT = Math.max(1, Math.round(Number(process.env.RELIABILITY_KILLS ?? 2) / 10));
const LONG = KILLS_PER_POINT > 1;
const FILES_PER_KILL = LONG ? 6 : 3;
const REDELIVERED_FILES = LONG ? 40 : 6;
const POINTS: CrashPoint[] = ['before-load', 'during-load', 'after-load', 'after-ack'];

let set: EmulatorSet | undefined;
let config: Config;
let store: FsObjectStore;
let crashDir: string;
let seed = 0;
const everything: Acknowledged[] = [];

const nextCsv = (rows: number): string => flightsCsv(rows, 700_000 + ++seed * 1000);

/** An upload stored as ingest stores it (its record, then its object in incoming/) whose notification was never sent. */
async function unannounced(rows: number): Promise<{ info: ObjectInfo; acknowledged: Acknowledged }> {
  const uploadId = newUploadId();
  const object = incomingName(uploadId);
  const csv = Buffer.from(await canonicalOf(flightsCsv(rows, 900_000 + ++seed * 1000)));
  const now = new Date().toISOString();
  const sha256 = createHash('sha256').update(csv).digest('hex');
  await uploadLedger(store).create(uploadId, { uploadId, status: 'stored', object, bytes: csv.length, rows, sha256, createdAt: now, updatedAt: now });
  const info = await store.write(object, csv, { contentType: 'text/csv', metadata: { uploadId } });
  return { info, acknowledged: { uploadId, object, rows } };
}

function report(scenario: string, runs: number, r: Reconciliation, extra: Record<string, unknown> = {}): void {
  console.log(`reliability: ${JSON.stringify({ scenario, runs, files: r.files, rows: r.rows, lost: r.lost, duplicated: r.duplicated, ...extra })}`);
}

function expectReconciled(r: Reconciliation): void {
  expect({ lost: r.lost, duplicated: r.duplicated, leftovers: r.leftovers, unsettled: r.unsettled }).toEqual({ lost: 0, duplicated: 0, leftovers: [], unsettled: [] });
}

/** The whole reconciliation, once every row of `files` is in the warehouse and every upload settled. */
const allLoaded = (files: Acknowledged[]): Promise<Reconciliation> => reconcileSettled(config.dataDir, config.bucket, files, 90_000);

async function pendingMarkers(): Promise<number> {
  let n = 0;
  for await (const _ of store.list(PENDING_PREFIX)) n++;
  return n;
}

async function statusOf(uploadId: string): Promise<string | undefined> {
  const res = await fetch(`${set!.gateway}/uploads/${uploadId}`);
  return res.ok ? ((await res.json()) as { status: string }).status : undefined;
}

/** Fisher–Yates with a seeded generator (mulberry32): the same order every run. */
function shuffled<T>(items: T[], seedValue: number): T[] {
  let a = seedValue;
  const random = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

let seeded: Acknowledged;

beforeAll(async () => {
  const dataDir = await tempDir();
  crashDir = await tempDir();
  const env = {
    ...process.env,
    ...profileEnv('emulator'),
    DATA_DIR: dataDir,
    PORT: '0',
    FUNCTIONS_PORT: '0',
    LOG_LEVEL: process.env.RELIABILITY_LOG_LEVEL ?? 'warn',
    AUTH: 'off',
    CRASH_POINTS_DIR: crashDir,
    // The reconciler leaves objects younger than one upload timeout to their notification: short here, and ticking every 2 s.
    UPLOAD_TIMEOUT_MS: '5000',
    RECONCILE_TICK_MS: '2000',
    // A flush killed while holding the lease blocks the others until it expires: 10 s by default locally.
    FLUSH_LEASE_MS: '3000',
    MAX_BACKOFF_MS: '4000',
  };
  config = loadConfig(env);
  store = new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket, { crossProcess: true });
  // Left by a run killed between the object's finalize and its notification.
  seeded = (await unannounced(9)).acknowledged;
  everything.push(seeded);
  set = await startEmulators(env);
}, 300_000);

afterAll(async () => {
  if (!set) return;
  expect(await set.stop()).toBe(0);
  // The whole run, with every process stopped: leftovers and upload records included.
  const r = await reconcile(config.dataDir, config.bucket, everything, []);
  report('start:emulators, whole run', 1, r, { restarts: set.restarted.length });
  expectReconciled(r);
}, 60_000);

describe('start:emulators under loader crashes and redelivery', () => {
  it('loads, before it serves, an incoming/ object a killed run left without a notification (start-up recovery)', async () => {
    // No waiting: start-up recovery loads it before the banner, ahead of any tick.
    const r = await reconcileRunning(config.dataDir, config.bucket, [seeded]);
    report('start:emulators start-up recovery of an unannounced incoming/ object', 1, r);
    expectReconciled(r);
  });

  for (const point of POINTS) {
    it(`SIGKILL of a loader process ${point}: the process is restarted, Pub/Sub redelivers, every row once`, async () => {
      const files: Acknowledged[] = [];
      const recoveries: number[] = [];
      const restartsBefore = set!.restarted.length;
      for (let run = 0; run < KILLS_PER_POINT; run++) {
        const armed = path.join(crashDir, point);
        await fs.writeFile(armed, '');
        const uploads = Array.from({ length: FILES_PER_KILL }, (_, i) => uploadUntilAnswered(() => set!.gateway, nextCsv(5 + i), `${point}-${run}-${i}`));
        // Restarts took up to 50 s on the loaded machine; a point never reached is disarmed so it cannot kill the next scenario.
        const crashedAt = await eventually(
          async () => (await fs.stat(armed).then(() => undefined, () => performance.now())),
          120_000,
          `a loader process to reach ${point}`,
        ).finally(() => fs.rm(armed, { force: true }));
        const outcomes = await Promise.all(uploads);
        const acknowledged = outcomes.map((o) => ('acknowledged' in o ? o.acknowledged : expect.fail(`refused: ${JSON.stringify(o.refused)}`)));
        for (const a of acknowledged) await eventually(async () => ((await statusOf(a.uploadId)) === 'loaded' ? true : undefined), 90_000, `${a.uploadId} loaded`);
        // Recovered: every file loaded and the replacement serving.
        await set!.serving();
        recoveries.push(performance.now() - crashedAt);
        files.push(...acknowledged);
        everything.push(...acknowledged);
      }
      const r = await reconcileRunning(config.dataDir, config.bucket, files);
      const restarted = set!.restarted.slice(restartsBefore);
      report(`SIGKILL of a loader process ${point} (start:emulators)`, KILLS_PER_POINT, r, {
        restarted,
        maxRecoveryMs: Math.round(Math.max(...recoveries)),
      });
      // Exactly one process died per kill, a loader (the notification's or the flush tick's), and was replaced.
      expect(restarted).toHaveLength(KILLS_PER_POINT);
      for (const fn of restarted) expect(['loadFlights', 'flushLoads']).toContain(fn);
      if (point === 'after-ack') expect(restarted.every((fn) => fn === 'loadFlights')).toBe(true);
      expectReconciled(r);
    }, 180_000 * KILLS_PER_POINT);
  }

  it(`each of ${REDELIVERED_FILES} notifications pushed to the loader 1–5 times, shuffled: every file loaded exactly once`, async () => {
    const written = await Promise.all(Array.from({ length: REDELIVERED_FILES }, (_, i) => unannounced(4 + (i % 5))));
    const loader = `${set!.functionUrl.loadFlights}${pushPath('demo', config.notificationTopic)}`;
    const pushes = shuffled(
      written.flatMap(({ info }, i) => Array.from({ length: 1 + (i % 5) }, (_, copy) => ({ info, attempt: copy + 1 }))),
      REDELIVERED_FILES,
    );
    const startedAt = performance.now();
    const answers = await Promise.all(
      pushes.map(async ({ info, attempt }) => {
        const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
        const publishTime = new Date().toISOString();
        // Pub/Sub's push body: every copy of a redelivered message is another delivery of the same message.
        const res = await fetch(loader, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            message: { attributes, data: data.toString('base64'), messageId: `redelivered-${info.name}`, publishTime },
            subscription: `projects/demo/subscriptions/${config.loaderSubscription}`,
            deliveryAttempt: attempt,
          }),
        });
        return res.status;
      }),
    );
    expect(answers.every((s) => s === 204)).toBe(true);
    const files = written.map((w) => w.acknowledged);
    everything.push(...files);
    const r = await allLoaded(files);
    // Every copy after a file's first added nothing, and nothing stays pending.
    await eventually(async () => ((await pendingMarkers()) === 0 ? true : undefined), 30_000, 'no file pending');
    const recoveryMs = performance.now() - startedAt;
    report('notifications pushed 1–5× each, shuffled (start:emulators)', 1, r, { deliveries: pushes.length, maxRecoveryMs: Math.round(recoveryMs) });
    expectReconciled(r);
  }, 120_000);

  it('loads an incoming/ object whose notification never came, on the reconcile tick, once it is older than an upload timeout', async () => {
    const { acknowledged } = await unannounced(6);
    everything.push(acknowledged);
    const startedAt = performance.now();
    const r = await allLoaded([acknowledged]);
    report('reconcile tick loads an unannounced incoming/ object (start:emulators)', 1, r, { maxRecoveryMs: Math.round(performance.now() - startedAt) });
    expectReconciled(r);
  }, 120_000);
});
