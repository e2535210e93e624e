/**
 * The cloud adapters under overload: Cloud Storage and BigQuery answer 503
 * with Retry-After for a while, then recover. The pipeline runs as in the
 * cloud but for the transport: the gateway and the functions of `npm start`,
 * the GCS store and the BigQuery warehouse through the official clients with
 * their default retry settings, pointed at the loopback fakes; the fake
 * bucket's notifications go to the durable bus, which delivers them to the
 * loader as a push subscription would. So what is tested is what the clients
 * retry by themselves and what our code does with what they give up on: the
 * user sees the upload accepted or a 503 with Retry-After (never a 500), and
 * every acknowledged row reaches the warehouse exactly once.
 *
 * The fake BigQuery runs no SQL: `LoadScript` applies what the load script
 * does (rows of files not yet in the manifest, then the batch's manifest rows)
 * to the fake bucket's objects, so a job run twice would show as rows twice.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BigQueryWarehouse } from '../../functions/adapters/bigquery/warehouse.js';
import { GcsObjectStore } from '../../functions/adapters/gcs/store.js';
import { loadConfig } from '../../functions/core/config.js';
import { notificationMessage } from '../../functions/core/notification.js';
import { topology } from '../../functions/core/topology.js';
import { startLocalPipeline, type LocalPipeline } from '../../functions/local/pipeline.js';
import { createRuntime, type Runtime } from '../../functions/runtime.js';
import type { JobBehaviour } from '../support/fake-bigquery.js';
import { FakeBigQuery } from '../support/fake-bigquery.js';
import { FakeGcs } from '../support/fake-gcs.js';
import type { UnavailableRequest } from '../support/unavailable.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, quietLogger, tempDir } from '../support/pipeline.js';
import { send } from '../ingest/http.js';

const PROJECT = 'demo-project';
const BUCKET = 'flights-bucket';

type Files = { structValues: { object: { value: string }; generation: { value: string } } }[];

/** What the load script does in BigQuery, applied to the fake bucket's objects (see the file's comment). */
class LoadScript {
  /** `object#generation` → its manifest row. */
  readonly manifest = new Map<string, { rows: number; jobId: string }>();
  /** One entry per row inserted: `object#generation#line`. */
  readonly inserted: string[] = [];
  /** Jobs the script ran in (each created job runs it once). */
  runs = 0;

  constructor(private readonly gcs: FakeGcs) {}

  run = (job: Record<string, unknown>): JobBehaviour => {
    this.runs += 1;
    const jobId = (job.jobReference as { jobId: string }).jobId;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const files = ((job.configuration as any).query.queryParameters[0].parameterValue.arrayValues as Files).map((f) => f.structValues);
    for (const { object, generation } of files) {
      const key = `${object.value}#${generation.value}`;
      if (this.manifest.has(key)) continue;
      const stored = this.gcs.objects.get(`${BUCKET}/${object.value}`);
      if (stored?.resource.generation !== generation.value) throw new Error(`the job names ${key}, which is not live in the bucket`);
      const rows = stored.bytes.toString('utf8').split('\n').filter(Boolean).length - 1;
      for (let line = 2; line < rows + 2; line++) this.inserted.push(`${key}#${line}`);
      this.manifest.set(key, { rows, jobId });
    }
    return {
      result: {
        schema: { fields: [{ name: 'object', type: 'STRING' }, { name: 'generation', type: 'STRING' }, { name: 'rows', type: 'INTEGER' }, { name: 'job_id', type: 'STRING' }] },
        rows: files.map(({ object, generation }) => {
          const m = this.manifest.get(`${object.value}#${generation.value}`)!;
          return [object.value, generation.value, String(m.rows), m.jobId];
        }),
      },
    };
  };

  rowsOf(object: string): number {
    return this.inserted.filter((k) => k.startsWith(`${object}#`)).length;
  }

  get duplicated(): number {
    return this.inserted.length - new Set(this.inserted).size;
  }
}

let gcs: FakeGcs;
let bq: FakeBigQuery;
let script: LoadScript;
let rt: Runtime | undefined;
let pipeline: LocalPipeline | undefined;

beforeAll(async () => {
  gcs = await new FakeGcs().start();
  bq = await new FakeBigQuery().start();
});
afterAll(async () => {
  await gcs.stop();
  await bq.stop();
});
afterEach(async () => {
  await pipeline?.close();
  await rt?.close();
  pipeline = undefined;
  rt = undefined;
  gcs.onFinalize = undefined;
  gcs.requests.length = 0;
  gcs.objects.clear();
  gcs.unavailable.failNext(0);
  bq.reset();
});

interface ClientRetries {
  /** The clients' own maxRetries; their defaults (3 each) unless a test wants them to give up sooner. */
  storage?: number;
  bigQuery?: number;
}

/** Both clients read a maxRetries of 0 as "the default" (3): none at all is autoRetry false. */
const retryOptions = (maxRetries: number | undefined) =>
  maxRetries === undefined ? {} : { retryOptions: maxRetries === 0 ? { autoRetry: false } : { maxRetries } };

/** The pipeline on the cloud adapters, the fakes behind them. */
async function startCloudPipeline(retries: ClientRetries = {}, env: Record<string, string> = {}): Promise<string> {
  const config = loadConfig({ DATA_DIR: await tempDir(), STORE: 'gcs', WAREHOUSE: 'bigquery', BUCKET, GOOGLE_CLOUD_PROJECT: PROJECT, AUTH: 'off', MIN_BACKOFF_MS: '20', MAX_BACKOFF_MS: '200', ...env });
  const storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: PROJECT, ...retryOptions(retries.storage) });
  const store = new GcsObjectStore(BUCKET, storage);
  // PassThroughClient signs nothing, so no token request (or metadata-server probe) leaves the machine.
  const client = new BigQuery({
    projectId: PROJECT,
    apiEndpoint: bq.endpoint,
    authClient: new PassThroughClient(),
    location: config.bigQuery.location,
    ...retryOptions(retries.bigQuery),
  });
  const warehouse = new BigQueryWarehouse({ projectId: PROJECT, ...config.bigQuery, pollMs: 5 }, client);
  script = new LoadScript(gcs);
  bq.onJob = script.run;
  rt = await createRuntime(config, quietLogger(), { store, warehouse });
  // What infra/ sets up in the cloud: the bucket's notifications to the topic, the subscriptions on it.
  const wiring = topology(config);
  for (const spec of [...wiring.subscriptions, ...wiring.retained]) await rt.bus.createSubscription(spec);
  const bus = rt.bus;
  gcs.onFinalize = (_bucket, name) => {
    const notification = wiring.notifications.find((n) => name.startsWith(n.prefix));
    if (!notification) return;
    void store.stat(name).then(async (info) => {
      const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info!);
      await bus.publish(notification.topic, data, attributes);
    });
  };
  pipeline = await startLocalPipeline(rt, 0, '127.0.0.1');
  return pipeline.url;
}

const statusOf = async (url: string, uploadId: string) => (await (await fetch(`${url}/uploads/${uploadId}`)).json()) as { status: string; loadedRows?: number; reason?: string };

interface Upload {
  uploadId: string;
  object: string;
  rows: number;
}

async function expectLoadedOnce(url: string, upload: Upload): Promise<void> {
  await eventually(
    async () => {
      const record = await statusOf(url, upload.uploadId);
      if (record.status === 'failed') throw new Error(`${upload.uploadId} failed: ${record.reason}`);
      return record.status === 'loaded' ? true : undefined;
    },
    45_000,
    `${upload.uploadId} to load`,
  );
  expect(await statusOf(url, upload.uploadId)).toMatchObject({ status: 'loaded', loadedRows: upload.rows });
  expect(script.rowsOf(upload.object)).toBe(upload.rows);
  expect(script.duplicated).toBe(0);
}

/** The upload's own writes: its claims, its record, its object (not the loader's lease or markers). */
const uploadWrite = (r: UnavailableRequest): boolean => r.method === 'POST' && r.path.startsWith('/upload/') && /^(idempotency|uploads|incoming|staging)\//.test(r.query.name ?? '');
const jobInsert = (r: UnavailableRequest): boolean => r.method === 'POST' && /\/jobs$/.test(r.path);
const jobsQuery = (r: UnavailableRequest): boolean => r.method === 'POST' && /\/queries$/.test(r.path);

describe('503 with Retry-After from the cloud services, then recovery', () => {
  it('Cloud Storage: the client retries the upload’s writes by itself; the upload is accepted and its rows load once', async () => {
    const url = await startCloudPipeline();
    gcs.unavailable.failNext(2, { match: uploadWrite });
    const reply = await send(url, flightsCsv(20, 5));
    expect(reply.status).toBe(201);
    expect(gcs.unavailable.answered).toBe(2);
    await expectLoadedOnce(url, reply.body as Upload);
  }, 60_000);

  it('Cloud Storage still 503 when the client gives up: the user gets 503 with Retry-After, nothing kept; the retry is accepted and loads once', async () => {
    const url = await startCloudPipeline({ storage: 1 });
    const csv = flightsCsv(15, 6);
    gcs.unavailable.failNext(2, { match: uploadWrite });
    const refused = await send(url, csv, { 'idempotency-key': 'k-1' });
    expect(gcs.unavailable.answered).toBe(2);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ type: '/problems/unavailable', detail: expect.stringContaining('nothing of the file was kept') });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect([...gcs.objects.keys()].filter((k) => k.startsWith(`${BUCKET}/incoming/`) || k.startsWith(`${BUCKET}/staging/`))).toEqual([]);
    const retried = await send(url, csv, { 'idempotency-key': 'k-1' });
    expect(retried.status).toBe(201);
    await expectLoadedOnce(url, retried.body as Upload);
  }, 60_000);

  it('BigQuery: the client retries jobs.insert under the same job id by itself; the job runs once and the rows load once', async () => {
    const url = await startCloudPipeline();
    bq.unavailable.failNext(2, { match: jobInsert });
    const reply = await send(url, flightsCsv(25, 7));
    expect(reply.status).toBe(201);
    await expectLoadedOnce(url, reply.body as Upload);
    expect(bq.unavailable.answered).toBe(2);
    const inserts = bq.find('POST', /\/jobs$/).map((r) => (r.body?.jobReference as { jobId: string }).jobId);
    expect(inserts).toEqual([inserts[0], inserts[0], inserts[0]]);
    expect(script.runs).toBe(1);
  }, 60_000);

  it('BigQuery still 503 when the client gives up: the flush fails, the next one loads the file, once', async () => {
    const url = await startCloudPipeline({ bigQuery: 1 });
    bq.unavailable.failNext(2, { match: jobInsert });
    const reply = await send(url, flightsCsv(30, 8));
    expect(reply.status).toBe(201);
    await expectLoadedOnce(url, reply.body as Upload);
    expect(bq.unavailable.answered).toBe(2);
    expect(script.runs).toBe(1);
  }, 60_000);

  it('BigQuery unavailable for longer than MAX_LOAD_FAILURES flushes: the file waits, is not quarantined, and loads once when it is back', async () => {
    const flushes = 12;
    const url = await startCloudPipeline({ bigQuery: 0 }, { FLUSH_TICK_MS: '100' });
    expect(flushes).toBeGreaterThan(rt!.config.maxLoadFailures);
    bq.unavailable.failNext(flushes, { match: jobInsert });
    const reply = await send(url, flightsCsv(12, 9));
    expect(reply.status).toBe(201);
    await expectLoadedOnce(url, reply.body as Upload);
    expect(bq.unavailable.answered).toBe(flushes);
    // An outage is nobody's file's fault: no file was split off and tried alone, no job id was spent.
    expect(new Set(bq.find('POST', /\/jobs$/).map((r) => (r.body?.jobReference as { jobId: string }).jobId)).size).toBe(1);
    expect(script.runs).toBe(1);
  }, 60_000);

  it('BigQuery jobs that end with backendError for more flushes than MAX_LOAD_FAILURES: no file charged or quarantined, and the file loads once under the next job id', async () => {
    // A file held alone backs off (1 to 30 minutes by default): shortened here.
    const url = await startCloudPipeline({}, { FLUSH_TICK_MS: '100', HELD_RETRY_FIRST_MS: '20', HELD_RETRY_MAX_MS: '100' });
    const failing = rt!.config.maxLoadFailures + 2;
    let failed = 0;
    bq.onJob = (job) => (failed < failing ? (failed++, { error: { reason: 'backendError', message: 'Backend error. Job aborted.' } }) : script.run(job));
    const reply = await send(url, flightsCsv(14, 10));
    expect(reply.status).toBe(201);
    await expectLoadedOnce(url, reply.body as Upload);
    expect(failed).toBe(failing);
    expect(script.runs).toBe(1);
    // Each attempt ran under a new id: BigQuery keeps a failed job's id.
    expect(new Set(bq.find('POST', /\/jobs$/).map((r) => (r.body?.jobReference as { jobId: string }).jobId)).size).toBe(failing + 1);
    expect([...gcs.objects.keys()].filter((k) => k.startsWith(`${BUCKET}/quarantine/`))).toEqual([]);
  }, 60_000);

  it('a file BigQuery fails every time (internalError) among 5 uploads: the other 4 load once, it waits pending with its reason, past MAX_LOAD_FAILURES, nothing quarantined', async () => {
    // Its back-off shortened (1 to 30 minutes by default; test/cloud/flush-lease.test.ts runs those on a fake clock).
    const url = await startCloudPipeline({}, { FLUSH_TICK_MS: '100', HELD_RETRY_FIRST_MS: '50', HELD_RETRY_MAX_MS: '400' });
    const maxFailures = rt!.config.maxLoadFailures;
    // The bad file is the one of 13 rows: every job that reads it fails, as a BigQuery bug tripped by one file would.
    const BAD_ROWS = 13;
    const rowsOf = (object: string) => (gcs.objects.get(`${BUCKET}/${object}`)?.bytes.toString('utf8').split('\n').filter(Boolean).length ?? 1) - 1;
    let failedJobs = 0;
    bq.onJob = (job) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const files = ((job.configuration as any).query.queryParameters[0].parameterValue.arrayValues as Files).map((f) => f.structValues.object.value);
      if (!files.some((o) => rowsOf(o) === BAD_ROWS)) return script.run(job);
      failedJobs += 1;
      return { error: { reason: 'internalError', message: 'An internal error occurred and the request could not be completed.' } };
    };
    const replies = await Promise.all([11, 12, BAD_ROWS, 14, 15].map((rows, i) => send(url, flightsCsv(rows, 40 + i))));
    expect(replies.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    const uploads = replies.map((r) => r.body as Upload);
    const bad = uploads.find((u) => u.rows === BAD_ROWS)!;
    for (const upload of uploads.filter((u) => u !== bad)) await expectLoadedOnce(url, upload);

    // It is tried again after each back-off, alone once its batches were split, and charged nothing.
    const record = await eventually(
      async () => {
        const r = await statusOf(url, bad.uploadId);
        const held = Number(/failed this file's load job (\d+) times/.exec(r.reason ?? '')?.[1] ?? 0);
        return held > maxFailures ? r : undefined;
      },
      45_000,
      `${bad.uploadId} held more than ${maxFailures} times`,
    );
    expect(record).toMatchObject({ status: 'loading', reason: expect.stringMatching(/^waiting on BigQuery: .*; next attempt at \d{4}-\d\d-\d\dT[\d:.]+Z: .*internal error/) });
    expect(failedJobs).toBeGreaterThan(maxFailures);
    expect(script.rowsOf(bad.object)).toBe(0);
    expect(script.duplicated).toBe(0);
    expect([...gcs.objects.keys()].filter((k) => k.startsWith(`${BUCKET}/quarantine/`))).toEqual([]);
    expect(gcs.objects.has(`${BUCKET}/${bad.object}`)).toBe(true);
  }, 90_000);

  it('an export job BigQuery failed itself (backendError) is retried, not reported failed: the export ends done', async () => {
    const url = await startCloudPipeline();
    const exportJobs: string[] = [];
    bq.onJob = (job) => {
      exportJobs.push((job.jobReference as { jobId: string }).jobId);
      return exportJobs.length === 1
        ? { error: { reason: 'backendError', message: 'Backend error. Job aborted.' } }
        : { statistics: { query: { statementType: 'EXPORT_DATA', exportDataStatistics: { fileCount: '1', rowCount: '7' } } } };
    };
    const started = await fetch(`${url}/exports?select=carrier`, { method: 'POST' });
    expect(started.status).toBe(202);
    const done = await eventually(async () => {
      const body = (await (await fetch(new URL(started.headers.get('location')!, url))).json()) as { status: string; rows?: number };
      return body.status === 'running' ? undefined : body;
    }, 30_000, 'the export to settle');
    expect(done).toMatchObject({ status: 'done', rows: 7 });
    expect(exportJobs).toEqual([exportJobs[0], `${exportJobs[0]}_retry1`]);
  }, 60_000);

  it('BigQuery still 503 for a query when the client gives up: /getdata answers 503 with Retry-After, not 500; the same query answers once it is back', async () => {
    const url = await startCloudPipeline({ bigQuery: 1 });
    bq.onJob = () => ({ result: { schema: { fields: [{ name: 'carrier', type: 'STRING' }] }, rows: [['AA']] } });
    bq.unavailable.failNext(2, { match: jobsQuery });
    const refused = await fetch(`${url}/getdata?select=carrier&limit=1`);
    expect(bq.unavailable.answered).toBe(2);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ type: '/problems/unavailable' });
    const again = await fetch(`${url}/getdata?select=carrier&limit=1`);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { rows: unknown[] }).rows).toEqual([{ carrier: 'AA' }]);
  }, 60_000);
});
