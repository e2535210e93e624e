/**
 * The warehouse on BigQuery through the official client.
 *
 * A batch of canonical CSV objects loads in ONE query job: a multi-statement
 * transaction reads the objects through a temporary external table
 * (`tableDefinitions`, so nothing is created in the dataset), maps each row
 * to its object with `_FILE_NAME`, inserts the rows with their lineage and
 * the manifest rows, and commits both or neither. One job per batch, not per
 * file, because table modifications per day are a fixed quota.
 *
 * Exactly once: the job id is derived from the table and the sorted
 * (object, generation) set, and BigQuery refuses a second job with the same
 * id (409), so a retried batch finds the first job and reports its outcome
 * instead of running again. Items already in the manifest from an earlier,
 * different batch are skipped inside the transaction. Two different batches
 * sharing an item must not run at the same time: BigQuery lets concurrent
 * INSERT-only transactions both commit, so both would load it.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BigQuery, type BigQueryOptions, type Job, type JobMetadata } from '@google-cloud/bigquery';
import { withPartitionBounds } from '../../core/partition.js';
import { WarehouseJobError, type ExportOutcome, type ExportTarget, type LoadItem, type LoadOutcome, type QueryResult, type Warehouse } from '../../core/ports.js';
import type { CompiledQuery, ExportSpec, QuerySpec } from '../../core/query-spec.js';
import { bigQueryCanonicalCsvSchema, COLUMNS } from '../../core/schema.js';
import { bigQueryDialect, compileCount, compileExport, compileSelect } from '../../core/sql.js';
import { queryParameter, type QueryParameter } from './params.js';
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
    if (items.length === 0) return [];
    const jobId = loadJobId(this.qualified(this.table), items);
    const job = await this.startOrFind(jobId, {
      query: {
        query: this.loadScript(),
        useLegacySql: false,
        parameterMode: 'NAMED',
        queryParameters: [filesParameter(items), queryParameter({ name: 'job_id', value: jobId, type: 'string', array: false })],
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
        maximumBytesBilled: String(this.config.maximumBytesBilled),
      },
      jobTimeoutMs: String(this.config.jobTimeoutMs),
    });
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
   * overwrite=true lets a job that died half-way be replaced cleanly.
   */
  async exportCsv(spec: ExportSpec, columns: readonly string[], target: ExportTarget): Promise<ExportOutcome> {
    const { sql, params } = compileExport(withPartitionBounds(spec), columns, bigQueryDialect(this.qualified(this.table)));
    const uri = target.store.uri(`${target.prefix}*.csv.gz`, '');
    if (!/^gs:\/\/[a-z0-9._-]+\/[A-Za-z0-9._\/*-]+$/.test(uri)) throw new Error(`cannot export to ${uri}: not a plain gs:// URI`);
    const statement = `EXPORT DATA OPTIONS (uri = '${uri}', format = 'CSV', compression = 'GZIP', header = true, overwrite = true) AS\n${sql}`;
    const job = await this.startOrFind(target.jobId, { query: this.queryConfig(statement, params.map(queryParameter)), jobTimeoutMs: String(this.config.jobTimeoutMs) });
    const metadata = await this.finished(job);
    return { rows: Number(metadata.statistics?.query?.exportDataStatistics?.rowCount ?? 0) };
  }

  private async run({ sql, params }: CompiledQuery): Promise<QueryResult> {
    const job = await this.start({
      location: this.config.location,
      configuration: { query: this.queryConfig(sql, params.map(queryParameter)), jobTimeoutMs: String(this.config.jobTimeoutMs) },
    });
    return this.results(job);
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
   * The transaction decides per item, on the manifest as it stands, whether
   * to load it; the last SELECT reports every item of the batch with the job
   * that loaded it, which is also what a later fetch of this job returns.
   */
  private loadScript(): string {
    const flights = `\`${this.qualified(this.table)}\``;
    const manifest = `\`${this.qualified(this.manifest)}\``;
    const columns = COLUMNS.map((c) => c.name);
    return `BEGIN TRANSACTION;
CREATE TEMP TABLE batch AS
SELECT f.object, f.generation, f.uri
FROM UNNEST(@files) AS f
WHERE NOT EXISTS (SELECT 1 FROM ${manifest} AS m WHERE m.object = f.object AND m.generation = f.generation);
INSERT INTO ${flights} (${[...columns, 'flight_date', '_source_object', '_source_generation', '_source_line', '_loaded_at'].join(', ')})
SELECT ${columns.map((c) => `s.${c}`).join(', ')}, DATE(s.year, s.month, s.day), b.object, b.generation, s._source_line, CURRENT_TIMESTAMP()
FROM ${STAGED} AS s JOIN batch AS b ON s._FILE_NAME = b.uri;
INSERT INTO ${manifest} (object, generation, rows, job_id, loaded_at)
SELECT b.object, b.generation, (SELECT COUNT(*) FROM ${STAGED} AS s WHERE s._FILE_NAME = b.uri), @job_id, CURRENT_TIMESTAMP()
FROM batch AS b;
COMMIT TRANSACTION;
SELECT m.object, CAST(m.generation AS STRING) AS generation, m.rows, m.job_id
FROM ${manifest} AS m JOIN UNNEST(@files) AS f ON m.object = f.object AND m.generation = f.generation
ORDER BY m.object, m.generation;`;
  }

  /** Creates the job, or, if that id exists (a retry, or a concurrent loader), takes the existing one. */
  private async startOrFind(jobId: string, configuration: JobMetadata['configuration']): Promise<Job> {
    try {
      return await this.start({ jobId, location: this.config.location, configuration });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      return this.client.job(jobId, { location: this.config.location });
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

  /** Waits for the job; a failure becomes a BigQueryJobError with BigQuery's reason and message. */
  private async finished(job: Job): Promise<JobMetadata> {
    let [metadata] = await job.getMetadata();
    while (metadata.status?.state !== 'DONE') {
      await sleep(this.config.pollMs ?? 500);
      [metadata] = await job.getMetadata();
    }
    if (metadata.status?.errorResult) throw jobError(metadata);
    return metadata;
  }

  /** Waits for the job, then reads every result page. */
  private async results(job: Job): Promise<QueryResult> {
    await this.finished(job);

    let schema: TableSchema | undefined;
    const raw: unknown[] = [];
    let pageToken: string | undefined;
    do {
      const [, , response] = await job.getQueryResults({ skipParsing: true, autoPaginate: false, ...(pageToken ? { pageToken } : {}) });
      const page = response as { schema?: TableSchema; rows?: unknown[]; pageToken?: string };
      schema ??= page.schema;
      raw.push(...(page.rows ?? []));
      pageToken = page.pageToken;
    } while (pageToken);
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

function jobError(job: JobMetadata): BigQueryJobError {
  const failure = job.status?.errorResult;
  return new BigQueryJobError(String(job.jobReference?.jobId), failure?.reason ?? 'unknown', failure?.message ?? '');
}
