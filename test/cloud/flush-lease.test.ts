/**
 * The loader's flush on the cloud adapters: the GCS store (lease, markers,
 * records) against the GCS fake and the BigQuery warehouse against the
 * BigQuery fake, so the requests are the ones the official clients send.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
import { Writable } from 'node:stream';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BigQueryWarehouse, PARTITION_LIMIT_REASON } from '../../functions/adapters/bigquery/warehouse.js';
import { GcsObjectStore } from '../../functions/adapters/gcs/store.js';
import { createLogger } from '../../functions/core/logger.js';
import type { EventBus } from '../../functions/core/ports.js';
import { uploadLedger } from '../../functions/core/uploads.js';
import { batches } from '../../functions/core/batches.js';
import { flushPending, type FlushDeps } from '../../functions/loader/flush.js';
import { acquireFlushLease, FLUSH_LEASE } from '../../functions/loader/lease.js';
import { PendingFiles } from '../../functions/loader/pending.js';
import type { FlushOutcome } from '../../functions/ops/events.js';
import { metrics } from '../../functions/ops/metrics.js';
import { FakeBigQuery, type JobBehaviour } from '../support/fake-bigquery.js';
import { FakeGcs } from '../support/fake-gcs.js';
import { quietLogger } from '../support/pipeline.js';

const PROJECT = 'demo-project';
let gcs: FakeGcs;
let bq: FakeBigQuery;
let store: GcsObjectStore;
let warehouse: BigQueryWarehouse;
const published: { topic: string; attributes: Record<string, string> }[] = [];

/** Only quarantine publishes, to the dead-letter topic; what it published is recorded. */
const bus: EventBus = {
  publish: async (topic, _data, attributes = {}) => {
    published.push({ topic, attributes });
    return String(published.length);
  },
  createSubscription: async () => undefined,
  subscribe: async () => ({ close: async () => undefined }),
  ping: async () => undefined,
  close: async () => undefined,
};

beforeAll(async () => {
  gcs = await new FakeGcs().start();
  bq = await new FakeBigQuery().start();
  store = new GcsObjectStore('bkt', new Storage({ apiEndpoint: gcs.endpoint, projectId: PROJECT, retryOptions: { maxRetries: 0 } }));
  const client = new BigQuery({ projectId: PROJECT, apiEndpoint: bq.endpoint, authClient: new PassThroughClient(), location: 'US' });
  warehouse = new BigQueryWarehouse({ projectId: PROJECT, dataset: 'ds', location: 'US', maximumBytesBilled: 10 * 1024 ** 3, jobTimeoutMs: 120_000, pollMs: 5 }, client);
});
afterAll(async () => {
  await gcs.stop();
  await bq.stop();
});
afterEach(() => {
  gcs.requests.length = 0;
  gcs.objects.clear();
  bq.reset();
  published.length = 0;
});

const deps = (settings: Partial<FlushDeps['settings']> = {}): FlushDeps => ({
  store,
  bus,
  warehouse,
  ledger: uploadLedger(store),
  log: quietLogger(),
  settings: { spacingMs: 0, leaseMs: 60_000, maxBatchBytes: Number.POSITIVE_INFINITY, maxFailures: 3, deadLetterTopic: 'dead', ...settings },
});

type Files = { structValues: { object: { value: string }; generation: { value: string } } }[];
const filesOf = (job: Record<string, unknown>): string[] =>
  ((job.configuration as any).query.queryParameters[0].parameterValue.arrayValues as Files).map((f) => f.structValues.object.value);

/** A load job that loads every file it is given, after `runningPolls` polls. */
function loadsAll(job: Record<string, unknown>, runningPolls = 0): JobBehaviour {
  const id = (job.jobReference as { jobId: string }).jobId;
  const files = ((job.configuration as any).query.queryParameters[0].parameterValue.arrayValues as Files).map((f) => f.structValues);
  return {
    runningPolls,
    result: {
      schema: { fields: [{ name: 'object', type: 'STRING' }, { name: 'generation', type: 'STRING' }, { name: 'rows', type: 'INTEGER' }, { name: 'job_id', type: 'STRING' }] },
      rows: files.map((f) => [f.object.value, f.generation.value, '10', id]),
    },
  };
}

const jobsSubmitted = () => bq.find('POST', /\/jobs$/).map((r) => filesOf(r.body ?? {}));
/** The files of each job BigQuery created, in order (a retried insert that found its id taken created none). */
const jobsCreated = () => [...bq.jobs.values()].map((j) => filesOf(j.resource));

describe('flush lease', () => {
  it('holds for the whole flush: a flush started while a slow job runs does nothing, and each file is in one job', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/a.csv', generation: '11', bytes: 100 });
    let jobStarted!: () => void;
    const started = new Promise<void>((resolve) => (jobStarted = resolve));
    bq.onJob = (job) => {
      jobStarted();
      return loadsAll(job, 20);
    };

    const first = flushPending(deps());
    await started;
    // A second file arrives and another instance flushes while the first job is still running.
    await pending.add({ object: 'incoming/b.csv', generation: '12', bytes: 100 });
    const second = await flushPending(deps());
    expect(second).toMatchObject({ ran: false, jobs: 0 });
    expect(await first).toMatchObject({ ran: true, loaded: 1, jobs: 1 });

    // Released at the end: the next flush runs at once (spacing 0) and takes only what is left.
    bq.onJob = (job) => loadsAll(job);
    expect(await flushPending(deps())).toMatchObject({ ran: true, loaded: 1, jobs: 1 });
    expect(jobsSubmitted()).toEqual([['incoming/a.csv'], ['incoming/b.csv']]);
  });

  it('is taken over only after it expired; the late holder then starts no further job', async () => {
    let clock = 1_000_000;
    const now = () => clock;
    const held = await acquireFlushLease(store, { spacingMs: 0, ttlMs: 1000 }, now);
    expect(held).toBeDefined();
    clock += 999;
    expect(await acquireFlushLease(store, { spacingMs: 0, ttlMs: 1000 }, now)).toBeUndefined();
    clock += 2;
    const taker = await acquireFlushLease(store, { spacingMs: 0, ttlMs: 1000 }, now);
    expect(taker).toBeDefined();
    expect(await held!.renew()).toBe(false);
    expect(held!.held).toBe(false);
    // The late holder's release does not free the new holder's lease.
    await held!.release();
    expect(await acquireFlushLease(store, { spacingMs: 0, ttlMs: 1000 }, now)).toBeUndefined();
    await taker!.release();
    expect(await acquireFlushLease(store, { spacingMs: 0, ttlMs: 1000 }, now)).toBeDefined();
  });

  it('is not locked out when the clock is set back: a lease stamped more than a TTL ahead counts as expired', async () => {
    let clock = 10_000_000;
    const now = () => clock;
    const times = { spacingMs: 5_000, ttlMs: 1_000 };
    // Held, and the clock goes back less than a TTL (skew between instances): still held, still spaced.
    const held = (await acquireFlushLease(store, times, now))!;
    clock -= 900;
    expect(await acquireFlushLease(store, times, now)).toBeUndefined();
    await held.release();
    expect(await acquireFlushLease(store, times, now)).toBeUndefined();
    // Set back an hour with the lease held, then with it released: each taken at once, not an hour later.
    clock += 10_000;
    const before = (await acquireFlushLease(store, times, now))!;
    clock -= 3_600_000;
    const after = await acquireFlushLease(store, times, now);
    expect(after).toBeDefined();
    expect(await before.renew()).toBe(false);
    await after!.release();
    clock -= 3_600_000;
    expect(await acquireFlushLease(store, times, now)).toBeDefined();
  });

  it('keeps a lease whose renewals overlap (the heartbeat and a job start at once)', async () => {
    const held = (await acquireFlushLease(store, { spacingMs: 0, ttlMs: 60_000 }))!;
    expect(await Promise.all([held.renew(), held.renew(), held.renew()])).toEqual([true, true, true]);
    expect(held.held).toBe(true);
    await held.release();
  });

  it('spaces flush starts: a released lease is taken again only `spacingMs` after the last start', async () => {
    let clock = 5_000_000;
    const now = () => clock;
    const times = { spacingMs: 120_000, ttlMs: 180_000 };
    await (await acquireFlushLease(store, times, now))!.release();
    clock += 119_999;
    expect(await acquireFlushLease(store, times, now)).toBeUndefined();
    clock += 1;
    expect(await acquireFlushLease(store, times, now)).toBeDefined();
    expect(JSON.parse(gcs.objects.get(`bkt/${FLUSH_LEASE}`)!.bytes.toString())).toMatchObject({ startedAt: clock, expiresAt: clock + 180_000 });
  });
});

describe('flush batches', () => {
  it('cuts batches at the byte cap; a file over the cap goes alone, billed for its own bytes', async () => {
    const pending = new PendingFiles(store);
    const sizes = [400, 500, 300, 2000, 100];
    for (const [i, bytes] of sizes.entries()) await pending.add({ object: `incoming/${i}.csv`, generation: String(100 + i), bytes });
    bq.onJob = (job) => loadsAll(job);

    expect(await flushPending(deps({ maxBatchBytes: 1000 }))).toMatchObject({ loaded: 5, jobs: 4 });

    expect(jobsSubmitted()).toEqual([['incoming/0.csv', 'incoming/1.csv'], ['incoming/2.csv'], ['incoming/3.csv'], ['incoming/4.csv']]);
    const billed = bq.find('POST', /\/jobs$/).map((r) => (r.body as any).configuration.query.maximumBytesBilled);
    expect(billed).toEqual([900, 300, 2000, 100].map((b) => String(1024 ** 3 + 4 * b)));
  });

  it('splits a batch that spans more partitions than one job may modify, without counting it against the files', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/1990s.csv', generation: '1', bytes: 10 });
    await pending.add({ object: 'incoming/2000s.csv', generation: '2', bytes: 10 });
    // BigQuery fails the script's ASSERT when the two files together span over 4,000 days.
    bq.onJob = (job) =>
      filesOf(job).length > 1 ? { error: { reason: 'invalidQuery', message: `${PARTITION_LIMIT_REASON}: the batch spans more than 4000 flight_date partitions` } } : loadsAll(job);

    expect(await flushPending(deps())).toMatchObject({ loaded: 2, quarantined: 0, jobs: 3 });
    expect(jobsSubmitted()).toEqual([['incoming/1990s.csv', 'incoming/2000s.csv'], ['incoming/1990s.csv'], ['incoming/2000s.csv']]);
    expect(await pending.list(10)).toEqual([]);
  });

  it('counts a file of unknown size as a whole batch', () => {
    const f = (object: string, bytes?: number) => ({ object, generation: '1', failures: 0, ...(bytes === undefined ? {} : { bytes }) });
    expect(batches([f('a', 1), f('b'), f('c', 1), f('d', 1)], 10, 100).map((b) => b.map((x) => x.object))).toEqual([['a'], ['b'], ['c', 'd']]);
    expect(batches([f('a', 1), f('b', 1), f('c', 1)], 2, 100).map((b) => b.map((x) => x.object))).toEqual([['a', 'b'], ['c']]);
  });
});

describe('flush failures', () => {
  const jobIds = () => bq.find('POST', /\/jobs$/).map((r) => (r.body as { jobReference: { jobId: string } }).jobReference.jobId);
  const quarantined = () => [...gcs.objects.keys()].filter((k) => k.startsWith('bkt/quarantine/'));

  it.each(['rateLimitExceeded', 'quotaExceeded', 'jobRateLimitExceeded'])(
    'stops the flush at once when BigQuery refuses jobs for the project (%s): no split, no later batch, no file charged; then each batch loads once',
    async (reason) => {
      const pending = new PendingFiles(store);
      await pending.add({ object: 'incoming/a.csv', generation: '21', bytes: 100 });
      await pending.add({ object: 'incoming/b.csv', generation: '22', bytes: 100 });
      await pending.add({ object: 'incoming/c.csv', generation: '23', bytes: 100 });
      const failing = 5;
      let submitted = 0;
      bq.onJob = (job) => (++submitted <= failing ? { runningPolls: 1, error: { reason, message: 'Exceeded rate limits: too many table update operations for this table.' } } : loadsAll(job));

      for (let flush = 0; flush < failing; flush++) {
        // One job per flush: the batch is not split, and the flush stops before the next batch.
        expect(await flushPending(deps({ maxFailures: 3, maxBatchBytes: 200 }))).toMatchObject({ ran: true, loaded: 0, quarantined: 0, held: 0, jobs: 1 });
        expect((await pending.list(10)).map((f) => [f.failures, f.held ?? 0])).toEqual([[0, 0], [0, 0], [0, 0]]);
      }
      expect(await flushPending(deps({ maxFailures: 3, maxBatchBytes: 200 }))).toMatchObject({ loaded: 3, quarantined: 0, jobs: 2 });

      expect(await pending.list(10)).toEqual([]);
      expect(quarantined()).toEqual([]);
      expect(published).toEqual([]);
      expect(jobsCreated()).toEqual([...Array.from({ length: failing + 1 }, () => ['incoming/a.csv', 'incoming/b.csv']), ['incoming/c.csv']]);
      // Each attempt ran under a new id of the batch's sequence: a failed id answers 409 forever.
      const base = jobIds()[0]!;
      expect(new Set(jobIds().slice(0, -1))).toEqual(new Set([base, ...Array.from({ length: failing }, (_, i) => `${base}_retry${i + 1}`)]));
      expect(bq.jobs.size).toBe(failing + 2);
    },
  );

  it('retries a batch whose job BigQuery failed once itself (backendError) whole, charging nothing, and goes on with the next batch', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/a.csv', generation: '24', bytes: 100 });
    await pending.add({ object: 'incoming/b.csv', generation: '25', bytes: 100 });
    await pending.add({ object: 'incoming/c.csv', generation: '26', bytes: 100 });
    let submitted = 0;
    bq.onJob = (job) => (++submitted === 1 ? { runningPolls: 1, error: { reason: 'backendError', message: 'Backend error. Job aborted.' } } : loadsAll(job));

    expect(await flushPending(deps({ maxBatchBytes: 200 }))).toMatchObject({ loaded: 1, held: 2, quarantined: 0, jobs: 2 });
    expect((await pending.list(10)).map((f) => [f.object, f.failures, f.held])).toEqual([['incoming/a.csv', 0, 1], ['incoming/b.csv', 0, 1]]);
    expect(await flushPending(deps({ maxBatchBytes: 200 }))).toMatchObject({ loaded: 2, held: 0, jobs: 1 });
    expect(jobsCreated()).toEqual([['incoming/a.csv', 'incoming/b.csv'], ['incoming/c.csv'], ['incoming/a.csv', 'incoming/b.csv']]);
  });

  it('holds back only the file BigQuery fails every time (internalError): the 4 uploads with it load once within two flushes, it stays pending, tried after a back-off of 1, 2, 4 … 30 min, named each time, nothing quarantined', async () => {
    const ledger = uploadLedger(store);
    const pending = new PendingFiles(store);
    const upload = async (i: number) => {
      const uploadId = `up${i}`;
      const info = await store.write(`incoming/${uploadId}.csv`, Buffer.from(`header\nrow of ${uploadId}\n`), { contentType: 'text/csv' });
      const now = new Date().toISOString();
      await ledger.create(uploadId, { uploadId, status: 'loading', object: info.name, generation: info.generation, bytes: info.size, rows: 10, sha256: uploadId, createdAt: now, updatedAt: now });
      await pending.add({ object: info.name, generation: info.generation, uploadId, bytes: info.size });
      return info.name;
    };
    const objects = [];
    for (let i = 0; i < 5; i++) objects.push(await upload(i));
    const bad = objects[2]!;
    bq.failJobsReading(store.uri(bad, ''));
    // The load script's manifest, as BigQuery would keep it: a file's rows go in once, under the first job that loads it.
    const manifest = new Map<string, string>();
    bq.onJob = (job) => {
      const id = (job.jobReference as { jobId: string }).jobId;
      for (const object of filesOf(job)) if (!manifest.has(object)) manifest.set(object, id);
      return {
        result: {
          schema: { fields: [{ name: 'object', type: 'STRING' }, { name: 'generation', type: 'STRING' }, { name: 'rows', type: 'INTEGER' }, { name: 'job_id', type: 'STRING' }] },
          rows: ((job.configuration as any).query.queryParameters[0].parameterValue.arrayValues as Files).map(({ structValues: f }) => [f.object.value, f.generation.value, '10', manifest.get(f.object.value)!]),
        },
      };
    };
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _e, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    let clock = Date.parse('2026-11-30T12:00:00Z');
    const flush = () => flushPending({ ...deps({ maxFailures: 2 }), log: createLogger('info', sink), now: () => clock });

    // 1st: the whole batch is held once and runs again whole; 2nd: held again, it is bisected down to the bad file.
    const reports = [await flush(), await flush()];
    expect(reports.map((r) => [r.loaded, r.held, r.quarantined])).toEqual([[0, 5, 0], [4, 1, 0]]);
    const good = objects.filter((o) => o !== bad);
    expect([...manifest.keys()].sort()).toEqual(good);
    for (const [i, object] of objects.entries()) {
      const record = await ledger.get(`up${i}`);
      if (object === bad) expect(record).toMatchObject({ status: 'loading', reason: expect.stringMatching(/^waiting on BigQuery: .*internal error/) });
      else expect(record).toMatchObject({ status: 'loaded', loadedRows: 10 });
      if (object !== bad) expect(record?.reason).toBeUndefined();
    }

    // Held alone, it waits a minute: a flush before then runs no job for it, and is still `held`.
    const [marker] = await pending.list(10);
    expect(marker).toMatchObject({ object: bad, failures: 0, heldAlone: 1, retryAt: new Date(clock + 60_000).toISOString() });
    expect((await ledger.get('up2'))?.reason).toContain(`next attempt at ${marker!.retryAt}`);
    clock += 59_000;
    reports.push(await flush());
    expect(reports.at(-1)).toMatchObject({ loaded: 0, held: 1, jobs: 0 });
    // A file arriving meanwhile loads at once, without it.
    const late = await upload(5);
    reports.push(await flush());
    expect(reports.at(-1)).toMatchObject({ loaded: 1, held: 1, jobs: 1 });
    expect(manifest.get(late)).toBeDefined();

    // Tried again when due, alone, and held again: 2, 4, 8, 16 minutes, then 30 at most.
    const waits = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      clock = Date.parse((await pending.list(10))[0]!.retryAt!);
      reports.push(await flush());
      expect(reports.at(-1)).toMatchObject({ loaded: 0, held: 1, jobs: 1 });
      waits.push((Date.parse((await pending.list(10))[0]!.retryAt!) - clock) / 60_000);
    }
    expect(waits).toEqual([2, 4, 8, 16, 30, 30]);
    // The back-off is in the marker: a loader started afresh (another instance, or after a restart) keeps it.
    clock += 29 * 60_000;
    expect(await flushPending({ ...deps({ maxFailures: 2 }), now: () => clock })).toMatchObject({ ran: true, held: 1, jobs: 0 });

    const markers = await pending.list(10);
    expect(markers).toHaveLength(1);
    expect(markers[0]).toMatchObject({ object: bad, failures: 0, heldAlone: 7 });
    const heldLines = lines.filter((l) => l.message === 'file held: BigQuery failed its job itself; it stays pending, charged nothing');
    expect(heldLines.map((l) => [l.object, l.uploadId])).toEqual(Array.from({ length: 7 }, () => [bad, 'up2']));
    // Each line names when it is tried next; the last one, what the marker and the upload's reason say.
    expect(heldLines.at(-1)).toMatchObject({ held: markers[0]!.held, nextAttemptAt: markers[0]!.retryAt });
    expect((await ledger.get('up2'))?.reason).toMatch(new RegExp(`^waiting on BigQuery: it failed this file's load job ${markers[0]!.held} times .*; next attempt at ${markers[0]!.retryAt}: .*internal error`));
    // Each flush that left the file pending is `held`, also those that loaded others or only waited: the loads-held alert's line.
    expect(lines.filter((l) => l.message === 'flush done').map((l) => l.outcome)).toEqual(Array.from({ length: 10 }, () => 'held'));
    expect(quarantined()).toEqual([]);
    expect(published).toEqual([]);
    // Each good file loaded by exactly one job, none run again as a duplicate: no row lost or doubled.
    expect(reports.reduce((n, r) => n + r.loaded, 0)).toBe(5);
    expect(reports.reduce((n, r) => n + r.duplicates, 0)).toBe(0);
    expect([...manifest.keys()].sort()).toEqual([...good, late].sort());
  });

  it('reports each flush the outage stopped as outcome held (the loads-held alert’s line and /metrics), a flush that also loaded files included', async () => {
    const pending = new PendingFiles(store);
    await pending.add({ object: 'incoming/a.csv', generation: '31', bytes: 100 });
    await pending.add({ object: 'incoming/b.csv', generation: '32', bytes: 100 });
    // One file per batch: the first flush loads a, then BigQuery fails b's job itself, twice.
    let submitted = 0;
    bq.onJob = (job) => ([2, 3].includes(++submitted) ? { error: { reason: 'internalError', message: 'An internal error occurred and the request could not be completed.' } } : loadsAll(job));
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _e, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const counted = async (outcome: FlushOutcome) => (await metrics.flushes.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    const heldBefore = await counted('held');

    const reports = [];
    // No back-off, so b is tried each flush.
    const settings = { maxBatchBytes: 100, heldRetryMs: { first: 0, max: 0 } };
    for (let flush = 0; flush < 3; flush++) reports.push(await flushPending({ ...deps(settings), log: createLogger('info', sink) }));

    expect(reports.map((r) => r.loaded)).toEqual([1, 0, 1]);
    const flushLines = lines.filter((l) => l.message === 'flush done');
    expect(flushLines.map((l) => [l.event, l.outcome, l.loaded])).toEqual([
      ['loader_flush', 'held', 1],
      ['loader_flush', 'held', 0],
      ['loader_flush', 'ok', 1],
    ]);
    expect((await counted('held')) - heldBefore).toBe(2);
    expect(quarantined()).toEqual([]);
  });

  it('still charges a file whose job BigQuery refused as invalid, and quarantines it after maxFailures attempts', async () => {
    const pending = new PendingFiles(store);
    const bad = await store.write('incoming/bad.csv', Buffer.from('year\nnineteen\n'), { contentType: 'text/csv' });
    await pending.add({ object: bad.name, generation: bad.generation, bytes: bad.size });
    bq.onJob = () => ({ error: { reason: 'invalid', message: 'Error while reading data, error message: CSV processing encountered too many errors' } });

    expect(await flushPending(deps({ maxFailures: 2 }))).toMatchObject({ loaded: 0, quarantined: 0 });
    expect((await pending.list(10)).map((f) => f.failures)).toEqual([1]);
    expect(await flushPending(deps({ maxFailures: 2 }))).toMatchObject({ loaded: 0, quarantined: 1 });

    expect(await pending.list(10)).toEqual([]);
    expect(quarantined()).toEqual(['bkt/quarantine/bad.csv', 'bkt/quarantine/bad.csv.report.json']);
    expect(published).toEqual([expect.objectContaining({ topic: 'dead', attributes: expect.objectContaining({ objectId: 'incoming/bad.csv', reason: expect.stringContaining('invalid') }) })]);
  });
});
