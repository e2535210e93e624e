/**
 * The warehouse on BigQuery through the official client.
 *
 * A batch of canonical CSV objects loads in ONE query job, a script: it reads
 * the objects once, through a temporary external table (`tableDefinitions`,
 * so nothing is created in the dataset) into a temp table with each row's
 * `_FILE_NAME`, before the transaction; inside `BEGIN TRANSACTION … COMMIT`
 * only temp and permanent tables are read (whether an external table may be
 * read there is not documented). The transaction inserts the rows with their
 * lineage and the manifest rows, with per-file counts from the temp table, and
 * commits both or neither. One job per batch, not per file: see docs/design.md
 * "Quota-aware batching".
 *
 * Exactly once: the job id is derived from the table and the sorted
 * (object, generation) set, so a retried batch finds its first job (409) and
 * reports that job's outcome instead of running again. A job id that FAILED
 * answers 409 forever, so a failed job is retried under the next id of a
 * deterministic sequence (`<id>_retry<n>`); items already in the manifest are
 * skipped, which makes a second run harmless. A job that failed for BigQuery's
 * own trouble (TRANSIENT_JOB_REASONS) is reported as WarehouseUnavailableError,
 * like a request the client gave up retrying: the loader then stops its flush
 * without charging the files, and the next flush runs the batch again. Two different batches sharing
 * an item must not run at the same time (BigQuery lets concurrent INSERT-only
 * transactions both commit): the loader's flush lease (loader/lease.ts)
 * serialises them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuery, type BigQueryOptions, type Job, type JobMetadata } from '@google-cloud/bigquery';
// Type-only: the REST resources the client generates but does not export by name.
import type * as types from '@google-cloud/bigquery/build/src/types.js';
import { withPartitionBounds } from '../../core/partition.js';
import { WarehouseJobError, WarehouseUnavailableError, type ExportOutcome, type ExportTarget, type LoadItem, type LoadOutcome, type QueryResult, type Warehouse } from '../../core/ports.js';
import type { CompiledQuery, ExportSpec, QuerySpec } from '../../core/query-spec.js';
import { bigQueryCanonicalCsvSchema, COLUMNS } from '../../core/schema.js';
import { bigQueryDialect, compileCount, compileExport, compileSelect } from '../../core/sql.js';
import { queryParameter, type QueryParameter } from './params.js';
import { loadBytesBilled } from './billing.js';
import { rowsToJson, type TableSchema } from './rows.js';
import { FLIGHTS_TABLE, MANIFEST_TABLE } from './tables.js';

export interface BigQueryWarehouseConfig {
  projectId: string;
  dataset: string;
  table?: string;
  manifestTable?: string;
  location: string;
  /** Queries that would bill more fail instead of running. */
  maximumBytesBilled: number;
  jobTimeoutMs: number;
  /** How often a running job is polled. */
  pollMs?: number;
}

/** The name the temporary external table has inside the load script. */
const STAGED = 'staged';

/**
 * BigQuery rejects a job that modifies more partitions than this
 * (https://cloud.google.com/bigquery/quotas#partitioned_tables). The script
 * checks it before its transaction, so an oversized batch fails fast and the
 * loader splits it (loader/flush.ts).
 */
export const MAX_PARTITIONS_PER_JOB = 4000;
export const PARTITION_LIMIT_REASON = 'partition-limit';

/** How long one jobs.query request waits for its query before BigQuery answers with a job to poll. */
const QUERY_WAIT_MS = 10_000;

type QueryRequest = types.default.IQueryRequest;
type QueryResponse = types.default.IQueryResponse;

/** The id of the `attempt`-th run of a job: the first keeps the base id. */
export const attemptJobId = (jobId: string, attempt: number): string => (attempt === 0 ? jobId : `${jobId}_retry${attempt}`);

/** Deterministic per (table, object set): the idempotency key of a batch. */
export function loadJobId(table: string, items: readonly LoadItem[]): string {
  const keys = [...new Set(items.map((i) => `${i.object}\n${i.generation}`))].sort();
  return `load_${createHash('sha256').update(`${table}\n\n${keys.join('\n\n')}`).digest('hex').slice(0, 40)}`;
}

export class BigQueryJobError extends WarehouseJobError {
  override readonly name = 'BigQueryJobError';
  constructor(
    readonly jobId: string,
    reason: string,
    message: string,
  ) {
    super(reason, `BigQuery job ${jobId} failed (${reason}): ${message}`);
  }
}

export class BigQueryWarehouse implements Warehouse {
  private readonly client: BigQuery;
  private readonly table: string;
  private readonly manifest: string;

  constructor(
    private readonly config: BigQueryWarehouseConfig,
    client: BigQuery | BigQueryOptions = {},
  ) {
    this.client = client instanceof BigQuery ? client : new BigQuery({ projectId: config.projectId, location: config.location, ...client });
    this.table = config.table ?? FLIGHTS_TABLE;
    this.manifest = config.manifestTable ?? MANIFEST_TABLE;
  }

  /** infra/ creates the dataset and tables (tables.ts); a function's account may not. */
  async init(): Promise<void> {}

  async load(items: LoadItem[]): Promise<LoadOutcome[]> {
    try {
      return await this.loadBatch(items);
    } catch (e) {
      throw unavailableOr(e);
    }
  }

  private async loadBatch(items: LoadItem[]): Promise<LoadOutcome[]> {
    if (items.length === 0) return [];
    const baseId = loadJobId(this.qualified(this.table), items);
    const bytes = items.every((i) => i.bytes !== undefined) ? loadBytesBilled(items.reduce((sum, i) => sum + (i.bytes ?? 0), 0)) : this.config.maximumBytesBilled;
    const { job, jobId } = await this.startOrRetry(baseId, (id) => ({
      query: {
        query: this.loadScript(),
        useLegacySql: false,
        parameterMode: 'NAMED',
        queryParameters: [filesParameter(items), queryParameter({ name: 'job_id', value: id, type: 'string', array: false })],
        tableDefinitions: {
          [STAGED]: {
            sourceFormat: 'CSV',
            // Canonical CSVs, written by ingest: a header, then exactly the schema's columns.
            sourceUris: [...new Set(items.map((i) => i.uri))],
            schema: { fields: bigQueryCanonicalCsvSchema() },
            csvOptions: { skipLeadingRows: '1', allowQuotedNewlines: true, encoding: 'UTF-8' },
            maxBadRecords: 0,
          },
        },
        maximumBytesBilled: String(bytes),
      },
      jobTimeoutMs: String(this.config.jobTimeoutMs),
    }));
    const { rows } = await this.results(job);
    return rows.map((r) => ({
      object: String(r.object),
      generation: String(r.generation),
      status: r.job_id === jobId ? 'loaded' : 'duplicate',
      rows: Number(r.rows),
    }));
  }

  async query(spec: QuerySpec): Promise<QueryResult> {
    return this.run(compileSelect(withPartitionBounds(spec), bigQueryDialect(this.qualified(this.table))));
  }

  async count(spec: QuerySpec): Promise<number> {
    const { rows } = await this.run(compileCount(withPartitionBounds(spec), bigQueryDialect(this.qualified(this.table))));
    return Number(rows[0]?.count ?? 0);
  }

  /**
   * One EXPORT DATA query job: the same compiled SELECT and typed parameters as
   * a page, written by BigQuery itself as gzip CSV shards (`*` becomes a
   * 12-digit counter; with ORDER BY the sorted result runs across the shards
   * in name order). The URI must be a literal in the statement, so it is
   * checked rather than escaped. The job id comes from the export, so a
   * redelivered request finds the first job (409) instead of exporting twice;
   * one that failed (the runner retries only an outage) is run again under
   * the next id of its sequence, and overwrite=true lets it replace what a
   * job that died half-way wrote.
   */
  async exportCsv(spec: ExportSpec, columns: readonly string[], target: ExportTarget): Promise<ExportOutcome> {
    const { sql, params } = compileExport(withPartitionBounds(spec), columns, bigQueryDialect(this.qualified(this.table)));
    const uri = target.store.uri(`${target.prefix}*.csv.gz`, '');
    if (!/^gs:\/\/[a-z0-9._-]+\/[A-Za-z0-9._\/*-]+$/.test(uri)) throw new Error(`cannot export to ${uri}: not a plain gs:// URI`);
    const statement = `EXPORT DATA OPTIONS (uri = '${uri}', format = 'CSV', compression = 'GZIP', header = true, overwrite = true) AS\n${sql}`;
    const { job } = await this.startOrRetry(target.jobId, () => ({ query: this.queryConfig(statement, params.map(queryParameter)), jobTimeoutMs: String(this.config.jobTimeoutMs) }));
    const metadata = await this.finished(job);
    return { rows: Number(metadata.statistics?.query?.exportDataStatistics?.rowCount ?? 0) };
  }

  /**
   * A page or a count through `jobs.query` with JOB_CREATION_OPTIONAL: a short
   * query answers in that one request, with no job to create and poll. When
   * BigQuery does make a job (the query outlived QUERY_WAIT_MS, or the result
   * has more pages), the rest is read from that job. The client's own
   * `query()` would fall back to jobs.insert as soon as jobTimeoutMs is set,
   * so the request is sent as the REST API documents it.
   */
  private async run(compiled: CompiledQuery): Promise<QueryResult> {
    try {
      return await this.runQuery(compiled);
    } catch (e) {
      throw unavailableOr(e);
    }
  }

  private async runQuery({ sql, params }: CompiledQuery): Promise<QueryResult> {
    const request: QueryRequest = {
      ...this.queryConfig(sql, params.map(queryParameter)),
      jobTimeoutMs: String(this.config.jobTimeoutMs),
      timeoutMs: Math.min(QUERY_WAIT_MS, this.config.jobTimeoutMs),
      location: this.config.location,
      jobCreationMode: 'JOB_CREATION_OPTIONAL',
      // A retried request with the same id is answered once (jobs.query's own idempotency).
      requestId: randomUUID(),
      // As the client's getQueryResults asks, so a page reads the same either way.
      formatOptions: { useInt64Timestamp: true },
    };
    const response = await new Promise<QueryResponse>((resolve, reject) =>
      this.client.request({ method: 'POST', uri: '/queries', json: request }, (err, body) => (err ? reject(err) : resolve(body as QueryResponse))),
    );
    if (response.jobComplete && !response.pageToken) return rowsToJson(response.schema as TableSchema | undefined, response.rows ?? []);
    const ref = response.jobReference;
    if (!ref?.jobId) throw new Error('BigQuery answered jobs.query with neither the whole result nor a job to read it from');
    const job = this.client.job(ref.jobId, { location: ref.location ?? this.config.location });
    return this.results(job, response.jobComplete ? response : undefined);
  }

  private queryConfig(query: string, queryParameters: QueryParameter[]): NonNullable<JobMetadata['configuration']>['query'] {
    return { query, useLegacySql: false, parameterMode: 'NAMED', queryParameters, maximumBytesBilled: String(this.config.maximumBytesBilled) };
  }

  /** Reads the dataset's metadata: no job, nothing billed. */
  async ping(): Promise<void> {
    await this.client.dataset(this.config.dataset).getMetadata();
  }

  async close(): Promise<void> {
    // The client holds no connections of its own to release.
  }

  /**
   * The external files are read once, into `staged_rows`, before the
   * transaction; the transaction reads only that and the manifest. Items
   * already in the manifest are skipped; the last SELECT reports every item
   * of the batch with the job that loaded it, which is also what a later
   * fetch of this job returns. `rows` is a reserved word in GoogleSQL, hence
   * the backticks. `_loaded_at` is a DATETIME holding UTC (as in DuckDB): a
   * TIMESTAMP does not coerce to DATETIME, so CURRENT_TIMESTAMP() would fail
   * the INSERT.
   */
  private loadScript(): string {
    const flights = `\`${this.qualified(this.table)}\``;
    const manifest = `\`${this.qualified(this.manifest)}\``;
    const columns = COLUMNS.map((c) => c.name);
    return `CREATE TEMP TABLE staged_rows AS
SELECT s._FILE_NAME AS _uri, s.* FROM ${STAGED} AS s;
ASSERT (SELECT COUNT(DISTINCT DATE(year, month, day)) FROM staged_rows) <= ${MAX_PARTITIONS_PER_JOB}
  AS '${PARTITION_LIMIT_REASON}: the batch spans more than ${MAX_PARTITIONS_PER_JOB} flight_date partitions, more than one job may modify';
CREATE TEMP TABLE batch AS
SELECT f.object, f.generation, f.uri
FROM UNNEST(@files) AS f
WHERE NOT EXISTS (SELECT 1 FROM ${manifest} AS m WHERE m.object = f.object AND m.generation = f.generation);
BEGIN TRANSACTION;
INSERT INTO ${flights} (${[...columns, 'flight_date', '_source_object', '_source_generation', '_source_line', '_loaded_at'].join(', ')})
SELECT ${columns.map((c) => `r.${c}`).join(', ')}, DATE(r.year, r.month, r.day), b.object, b.generation, r._source_line, CURRENT_DATETIME('UTC')
FROM staged_rows AS r JOIN batch AS b ON r._uri = b.uri;
INSERT INTO ${manifest} (object, generation, \`rows\`, job_id, loaded_at)
SELECT b.object, b.generation, COUNT(r._uri), @job_id, CURRENT_TIMESTAMP()
FROM batch AS b LEFT JOIN staged_rows AS r ON r._uri = b.uri
GROUP BY b.object, b.generation;
COMMIT TRANSACTION;
SELECT m.object, CAST(m.generation AS STRING) AS generation, m.\`rows\`, m.job_id
FROM ${manifest} AS m JOIN UNNEST(@files) AS f ON m.object = f.object AND m.generation = f.generation
ORDER BY m.object, m.generation;`;
  }

  /**
   * Runs the job under `baseId`, or under the next id of its retry sequence
   * while the ids taken belong to jobs that failed. An id held by a running or
   * successful job (a retry of a batch that got through, or a concurrent
   * loader) is that job: it is waited for instead of run again.
   */
  private async startOrRetry(baseId: string, configuration: (jobId: string) => JobMetadata['configuration']): Promise<{ job: Job; jobId: string }> {
    for (let attempt = 0; ; attempt++) {
      const jobId = attemptJobId(baseId, attempt);
      const { job, existed } = await this.startOrFind(jobId, configuration(jobId));
      if (!existed) return { job, jobId };
      const [metadata] = await job.getMetadata();
      if (!(metadata.status?.state === 'DONE' && metadata.status.errorResult)) return { job, jobId };
    }
  }

  /** Creates the job, or, if that id exists (a retry, or a concurrent loader), takes the existing one. */
  private async startOrFind(jobId: string, configuration: JobMetadata['configuration']): Promise<{ job: Job; existed: boolean }> {
    try {
      return { job: await this.start({ jobId, location: this.config.location, configuration }), existed: false };
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      return { job: this.client.job(jobId, { location: this.config.location }), existed: true };
    }
  }

  /** A job can fail as it is created; the client then throws with the job resource attached. */
  private async start(options: Parameters<BigQuery['createJob']>[0]): Promise<Job> {
    try {
      const [job] = await this.client.createJob(options);
      return job;
    } catch (e) {
      const job = (e as { response?: JobMetadata }).response;
      if (job?.status?.errorResult) throw jobError(job);
      throw e;
    }
  }

  /** Waits for the job; a failure becomes a BigQueryJobError with BigQuery's reason and message (jobError). */
  private async finished(job: Job): Promise<JobMetadata> {
    let [metadata] = await job.getMetadata();
    while (metadata.status?.state !== 'DONE') {
      await sleep(this.config.pollMs ?? 500);
      [metadata] = await job.getMetadata();
    }
    if (metadata.status?.errorResult) throw jobError(metadata);
    return metadata;
  }

  /** Waits for the job, then reads every result page (after `first`, when the first page is in hand). */
  private async results(job: Job, first?: QueryResponse): Promise<QueryResult> {
    if (!first) await this.finished(job);

    let schema = first?.schema as TableSchema | undefined;
    const raw: unknown[] = [...(first?.rows ?? [])];
    let pageToken = first?.pageToken ?? undefined;
    let read = first !== undefined;
    while (!read || pageToken) {
      const [, , response] = await job.getQueryResults({ skipParsing: true, autoPaginate: false, ...(pageToken ? { pageToken } : {}) });
      const page = response as { schema?: TableSchema; rows?: unknown[]; pageToken?: string };
      schema ??= page.schema;
      raw.push(...(page.rows ?? []));
      pageToken = page.pageToken;
      read = true;
    }
    return rowsToJson(schema, raw);
  }

  private qualified(table: string): string {
    return `${this.config.projectId}.${this.config.dataset}.${table}`;
  }
}

/** The batch as an ARRAY<STRUCT<object, generation, uri>> parameter, so the script joins on it. */
function filesParameter(items: readonly LoadItem[]): QueryParameter {
  const field = (name: string, type: string) => ({ name, type: { type } });
  return {
    name: 'files',
    parameterType: { type: 'ARRAY', arrayType: { type: 'STRUCT', structTypes: [field('object', 'STRING'), field('generation', 'INT64'), field('uri', 'STRING')] } },
    parameterValue: {
      arrayValues: items.map((i) => ({ structValues: { object: { value: i.object }, generation: { value: i.generation }, uri: { value: i.uri } } })),
    },
  };
}

/** A request the client retried (its shouldRetryRequest statuses) and gave up on becomes WarehouseUnavailableError. */
function unavailableOr(error: unknown): unknown {
  const status = (error as { code?: unknown }).code;
  if (typeof status !== 'number' || !(status === 408 || status === 429 || status >= 500)) return error;
  return new WarehouseUnavailableError(`BigQuery is unavailable: ${(error as Error).message}`, { cause: error });
}

/**
 * Reasons a job ends with that are BigQuery's trouble, not its input's
 * (https://cloud.google.com/bigquery/docs/error-messages): `backendError`
 * ("the job failed; you can safely retry the job"), `internalError`,
 * `rateLimitExceeded` (retry with back-off), and the job-level forms Google's
 * own Python client re-runs a query job for (`jobRateLimitExceeded`;
 * `jobBackendError`, `jobInternalError`: "retry the job"). `quotaExceeded` is
 * not transient, but a quota is the project's or the table's, never one file's:
 * the files wait for it rather than being quarantined. See docs/design.md.
 */
export const TRANSIENT_JOB_REASONS: ReadonlySet<string> = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'jobRateLimitExceeded',
  'jobBackendError',
  'jobInternalError',
  'quotaExceeded',
]);

/** A failed job as BigQueryJobError, wrapped in WarehouseUnavailableError when the reason is BigQuery's trouble (an outage, not a bad input). */
function jobError(job: JobMetadata): BigQueryJobError | WarehouseUnavailableError {
  const failure = job.status?.errorResult;
  const error = new BigQueryJobError(String(job.jobReference?.jobId), failure?.reason ?? 'unknown', failure?.message ?? '');
  return TRANSIENT_JOB_REASONS.has(error.reason) ? new WarehouseUnavailableError(`BigQuery is unavailable: ${error.message}`, { cause: error }) : error;
}
