/**
 * A loopback fake of the BigQuery REST calls @google-cloud/bigquery makes for
 * the warehouse: datasets.insert, tables.insert, jobs.insert, jobs.query, jobs.get
 * and jobs.getQueryResults. It records every request and answers with the REST
 * API's shapes: 409 for an existing dataset, table or job id, job resources
 * with status.state and status.errorResult, results as schema + `{f: [{v}]}`.
 * What a job does is up to the test (`onJob`, which also answers jobs.query
 * with the request as `{configuration: {query: request}}`); the fake runs no SQL.
 * jobs.query with JOB_CREATION_OPTIONAL answers a query that is DONE at once
 * without a job, as BigQuery's short query path does; a running one gets a job.
 * `unavailable` makes the next requests answer 503 with Retry-After
 * (test/support/unavailable.ts), creating nothing. `failJobsReading` fails
 * every job that reads a given object, forever, as a BigQuery bug tripped by
 * one file would.
 *
 * Point the real client at it with
 * `new BigQuery({ apiEndpoint: fake.endpoint, projectId, authClient: new PassThroughClient() })`.
 */
import http from 'node:http';
import { closeLoopback, listenLoopback } from './loopback.js';
import { Unavailable } from './unavailable.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

export interface JobResult {
  schema: { fields: { name: string; type: string; mode?: string }[] };
  /** Values as BigQuery sends them: strings, or null. */
  rows: (string | null)[][];
}

/** How a submitted job behaves. */
export interface JobBehaviour {
  result?: JobResult;
  error?: { reason: string; message: string };
  /** jobs.get answers RUNNING this many times before DONE. */
  runningPolls?: number;
  /** Merged into the job's `statistics` once it is DONE (e.g. `query.exportDataStatistics`). */
  statistics?: Record<string, unknown>;
}

interface StoredJob {
  resource: Record<string, unknown>;
  behaviour: JobBehaviour;
  polls: number;
}

export class FakeBigQuery {
  readonly requests: RecordedRequest[] = [];
  readonly datasets = new Map<string, Record<string, unknown>>();
  readonly tables = new Map<string, Record<string, unknown>>();
  readonly jobs = new Map<string, StoredJob>();
  onJob: (job: Record<string, unknown>) => JobBehaviour = () => ({});
  readonly unavailable = new Unavailable();
  /** Source URIs whose jobs always fail, with the error they fail with. */
  private readonly failing = new Map<string, { reason: string; message: string }>();
  endpoint = '';
  private server?: http.Server;

  async start(): Promise<this> {
    ({ server: this.server, endpoint: this.endpoint } = await listenLoopback((req, body, res) => this.handle(req, body, res)));
    return this;
  }

  async stop(): Promise<void> {
    await closeLoopback(this.server);
  }

  reset(): void {
    this.requests.length = 0;
    this.datasets.clear();
    this.tables.clear();
    this.jobs.clear();
    this.onJob = () => ({});
    this.unavailable.failNext(0);
    this.failing.clear();
  }

  /** Every job whose sources (an external table's or a load job's `sourceUris`) include `uri` fails with `error`, whatever `onJob` says. */
  failJobsReading(uri: string, error = { reason: 'internalError', message: 'An internal error occurred and the request could not be completed.' }): void {
    this.failing.set(uri, error);
  }

  private behaviourOf(job: Record<string, unknown>): JobBehaviour {
    const configuration = (job.configuration ?? {}) as { query?: { tableDefinitions?: Record<string, { sourceUris?: string[] }> }; load?: { sourceUris?: string[] } };
    const uris = [...Object.values(configuration.query?.tableDefinitions ?? {}).flatMap((t) => t.sourceUris ?? []), ...(configuration.load?.sourceUris ?? [])];
    const error = uris.map((u) => this.failing.get(u)).find((e) => e !== undefined);
    return error ? { error } : this.onJob(job);
  }

  /** A job that exists before the test's client submits anything, as if an earlier attempt had created it. */
  seedJob(projectId: string, jobId: string, location: string, behaviour: JobBehaviour): void {
    this.jobs.set(jobId, { resource: { kind: 'bigquery#job', jobReference: { projectId, jobId, location }, configuration: {} }, behaviour, polls: 0 });
  }

  find(method: string, pattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pattern.test(r.path));
  }

  private handle(req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : undefined;
    const method = req.method ?? '';
    this.requests.push({ method, path: url.pathname, query, headers: req.headers, body });
    if (this.unavailable.intercept({ method, path: url.pathname, query }, res)) return;
    const p = url.pathname.replace(/^\/bigquery\/v2/, '');
    let m: RegExpMatchArray | null;
    if (method === 'POST' && (m = p.match(/^\/projects\/([^/]+)\/datasets$/))) return this.insertDataset(m[1] as string, body ?? {}, res);
    if (method === 'POST' && (m = p.match(/^\/projects\/([^/]+)\/datasets\/([^/]+)\/tables$/))) return this.insertTable(body ?? {}, res);
    if (method === 'POST' && (m = p.match(/^\/projects\/([^/]+)\/jobs$/))) return this.insertJob(body ?? {}, res);
    if (method === 'POST' && (m = p.match(/^\/projects\/([^/]+)\/queries$/))) return this.query(m[1] as string, body ?? {}, res);
    if (method === 'GET' && (m = p.match(/^\/projects\/([^/]+)\/jobs\/([^/]+)$/))) return this.getJob(decodeURIComponent(m[2] as string), res);
    if (method === 'GET' && (m = p.match(/^\/projects\/([^/]+)\/queries\/([^/]+)$/))) return this.getQueryResults(decodeURIComponent(m[2] as string), res);
    error(res, 404, 'notFound', `fake: no route for ${method} ${url.pathname}`);
  }

  private insertDataset(projectId: string, body: Record<string, unknown>, res: http.ServerResponse): void {
    const ref = body.datasetReference as { datasetId: string };
    if (this.datasets.has(ref.datasetId)) return error(res, 409, 'duplicate', `Already Exists: Dataset ${projectId}:${ref.datasetId}`);
    const resource = { kind: 'bigquery#dataset', id: `${projectId}:${ref.datasetId}`, ...body, datasetReference: { projectId, ...ref } };
    this.datasets.set(ref.datasetId, resource);
    json(res, 200, resource);
  }

  private insertTable(body: Record<string, unknown>, res: http.ServerResponse): void {
    const ref = body.tableReference as { projectId: string; datasetId: string; tableId: string };
    const key = `${ref.projectId}.${ref.datasetId}.${ref.tableId}`;
    if (this.tables.has(key)) return error(res, 409, 'duplicate', `Already Exists: Table ${ref.projectId}:${ref.datasetId}.${ref.tableId}`);
    const resource = { kind: 'bigquery#table', id: `${ref.projectId}:${ref.datasetId}.${ref.tableId}`, type: 'TABLE', ...body };
    this.tables.set(key, resource);
    json(res, 200, resource);
  }

  private insertJob(body: Record<string, unknown>, res: http.ServerResponse): void {
    const ref = body.jobReference as { projectId: string; jobId: string; location?: string };
    if (this.jobs.has(ref.jobId)) return error(res, 409, 'duplicate', `Already Exists: Job ${ref.projectId}:${ref.location ?? 'US'}.${ref.jobId}`);
    const stored: StoredJob = { resource: { kind: 'bigquery#job', id: `${ref.projectId}:${ref.location}.${ref.jobId}`, ...body }, behaviour: this.behaviourOf(body), polls: 0 };
    this.jobs.set(ref.jobId, stored);
    json(res, 200, this.view(stored));
  }

  private query(projectId: string, request: Record<string, unknown>, res: http.ServerResponse): void {
    const behaviour = this.behaviourOf({ configuration: { query: request } });
    if (behaviour.error) return json(res, 400, { error: { code: 400, message: behaviour.error.message, errors: [{ ...behaviour.error, domain: 'global' }], status: 'INVALID_ARGUMENT' } });
    const result = behaviour.result ?? { schema: { fields: [] }, rows: [] };
    const answered = { kind: 'bigquery#queryResponse', queryId: `fake-${this.jobs.size}-${this.requests.length}`, totalRows: String(result.rows.length), cacheHit: false };
    if (request.jobCreationMode === 'JOB_CREATION_OPTIONAL' && !behaviour.runningPolls) {
      return json(res, 200, { ...answered, jobComplete: true, schema: result.schema, rows: result.rows.map((r) => ({ f: r.map((v) => ({ v })) })) });
    }
    const jobId = `job_${this.jobs.size + 1}`;
    const jobReference = { projectId, jobId, location: request.location };
    this.jobs.set(jobId, { resource: { kind: 'bigquery#job', id: `${projectId}:${request.location}.${jobId}`, jobReference, configuration: { query: request } }, behaviour, polls: 0 });
    json(res, 200, { ...answered, jobReference, jobComplete: false });
  }

  private getJob(jobId: string, res: http.ServerResponse): void {
    const stored = this.jobs.get(jobId);
    if (!stored) return error(res, 404, 'notFound', `Not found: Job ${jobId}`);
    stored.polls += 1;
    json(res, 200, this.view(stored));
  }

  private getQueryResults(jobId: string, res: http.ServerResponse): void {
    const stored = this.jobs.get(jobId);
    if (!stored) return error(res, 404, 'notFound', `Not found: Job ${jobId}`);
    const result = stored.behaviour.result ?? { schema: { fields: [] }, rows: [] };
    json(res, 200, {
      kind: 'bigquery#getQueryResultsResponse',
      etag: 'fake',
      jobReference: stored.resource.jobReference,
      jobComplete: true,
      schema: result.schema,
      rows: result.rows.map((r) => ({ f: r.map((v) => ({ v })) })),
      totalRows: String(result.rows.length),
      cacheHit: false,
    });
  }

  /** The job as jobs.insert / jobs.get return it at this moment. */
  private view(stored: StoredJob): Record<string, unknown> {
    const running = stored.polls < (stored.behaviour.runningPolls ?? 0);
    const { error: failure } = stored.behaviour;
    const status = running
      ? { state: 'RUNNING' }
      : failure
        ? { state: 'DONE', errorResult: { ...failure, location: 'query' }, errors: [{ ...failure, location: 'query' }] }
        : { state: 'DONE' };
    const statistics = { creationTime: '1700000000000', ...(running ? {} : stored.behaviour.statistics) };
    return { ...stored.resource, status, statistics };
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function error(res: http.ServerResponse, status: number, reason: string, message: string): void {
  json(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }], status: status === 409 ? 'ALREADY_EXISTS' : 'NOT_FOUND' } });
}
