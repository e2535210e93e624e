import { BigQuery } from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { flightsTableDefinition, MANIFEST_SCHEMA, manifestTableDefinition } from '../../functions/adapters/bigquery/tables.js';
import { BigQueryJobError, BigQueryWarehouse, loadJobId, TRANSIENT_JOB_REASONS } from '../../functions/adapters/bigquery/warehouse.js';
import { GcsObjectStore } from '../../functions/adapters/gcs/store.js';
import { WarehouseUnavailableError, type LoadItem } from '../../functions/core/ports.js';
import type { ExportSpec, QuerySpec } from '../../functions/core/query-spec.js';
import { bigQueryCanonicalCsvSchema, bigQueryTableSchema } from '../../functions/core/schema.js';
import { bigQueryDialect, compileCount, compileSelect } from '../../functions/core/sql.js';
import { FakeBigQuery, type JobResult } from '../support/fake-bigquery.js';
import { presentRow } from '../../functions/query/formats.js';

const PROJECT = 'demo-project';
const config = { projectId: PROJECT, dataset: 'flights_ds', location: 'europe-west1', maximumBytesBilled: 5_000_000_000, jobTimeoutMs: 120_000, pollMs: 1 };
let fake: FakeBigQuery;
let warehouse: BigQueryWarehouse;

beforeAll(async () => {
  fake = await new FakeBigQuery().start();
  // PassThroughClient signs nothing, so no token request (or metadata-server probe) leaves the machine.
  const client = new BigQuery({ projectId: PROJECT, apiEndpoint: fake.endpoint, authClient: new PassThroughClient(), location: config.location });
  warehouse = new BigQueryWarehouse(config, client);
});
afterAll(() => fake.stop());
afterEach(() => fake.reset());

const items: LoadItem[] = [
  { object: 'flights/b.csv', generation: '1700000000000002', uri: 'gs://bkt/flights/b.csv', bytes: 300_000_000 },
  { object: 'flights/a.csv', generation: '1700000000000001', uri: 'gs://bkt/flights/a.csv', bytes: 200_000_000 },
];

/** The load script, word for word: one read of the files before the transaction, only temp and permanent tables inside it. */
const LOAD_SCRIPT = `CREATE TEMP TABLE staged_rows AS
SELECT s._FILE_NAME AS _uri, s.* FROM staged AS s;
ASSERT (SELECT COUNT(DISTINCT DATE(year, month, day)) FROM staged_rows) <= 4000
  AS 'partition-limit: the batch spans more than 4000 flight_date partitions, more than one job may modify';
CREATE TEMP TABLE batch AS
SELECT f.object, f.generation, f.uri
FROM UNNEST(@files) AS f
WHERE NOT EXISTS (SELECT 1 FROM \`demo-project.flights_ds._loads\` AS m WHERE m.object = f.object AND m.generation = f.generation);
BEGIN TRANSACTION;
INSERT INTO \`demo-project.flights_ds.flights\` (id, year, month, day, dep_time, sched_dep_time, dep_delay, arr_time, sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest, air_time, distance, hour, minute, time_hour, name, flight_date, _source_object, _source_generation, _source_line, _loaded_at)
SELECT r.id, r.year, r.month, r.day, r.dep_time, r.sched_dep_time, r.dep_delay, r.arr_time, r.sched_arr_time, r.arr_delay, r.carrier, r.flight, r.tailnum, r.origin, r.dest, r.air_time, r.distance, r.hour, r.minute, r.time_hour, r.name, DATE(r.year, r.month, r.day), b.object, b.generation, r._source_line, CURRENT_DATETIME('UTC')
FROM staged_rows AS r JOIN batch AS b ON r._uri = b.uri;
INSERT INTO \`demo-project.flights_ds._loads\` (object, generation, \`rows\`, job_id, loaded_at)
SELECT b.object, b.generation, COUNT(r._uri), @job_id, CURRENT_TIMESTAMP()
FROM batch AS b LEFT JOIN staged_rows AS r ON r._uri = b.uri
GROUP BY b.object, b.generation;
COMMIT TRANSACTION;
SELECT m.object, CAST(m.generation AS STRING) AS generation, m.\`rows\`, m.job_id
FROM \`demo-project.flights_ds._loads\` AS m JOIN UNNEST(@files) AS f ON m.object = f.object AND m.generation = f.generation
ORDER BY m.object, m.generation;`;

/** What the load script's last SELECT returns: the manifest rows of the batch. */
function manifestResult(rows: [string, string, string, string][]): JobResult {
  return {
    schema: { fields: [{ name: 'object', type: 'STRING' }, { name: 'generation', type: 'STRING' }, { name: 'rows', type: 'INTEGER' }, { name: 'job_id', type: 'STRING' }] },
    rows,
  };
}

const jobInserts = () => fake.find('POST', /\/projects\/demo-project\/jobs$/);
const jobsQueries = () => fake.find('POST', /\/projects\/demo-project\/queries$/);

describe('BigQueryWarehouse against the REST API', () => {
  it('creates no dataset or table at start-up: infra/ does, a function account may not', async () => {
    await warehouse.init();
    expect(fake.requests).toEqual([]);
  });

  it('defines the partitioned, clustered flights table and the manifest as tables.insert resources', () => {
    const dataset = { projectId: PROJECT, datasetId: 'flights_ds' };
    expect(flightsTableDefinition(dataset)).toEqual({
      tableReference: { projectId: PROJECT, datasetId: 'flights_ds', tableId: 'flights' },
      description: expect.any(String),
      schema: { fields: bigQueryTableSchema() },
      timePartitioning: { type: 'DAY', field: 'flight_date' },
      clustering: { fields: ['carrier', 'origin', 'dest'] },
    });
    expect(bigQueryTableSchema().find((f) => f.name === 'flight_date')).toMatchObject({ type: 'DATE', mode: 'REQUIRED' });
    expect(manifestTableDefinition(dataset)).toEqual({
      tableReference: { projectId: PROJECT, datasetId: 'flights_ds', tableId: '_loads' },
      description: expect.any(String),
      schema: { fields: MANIFEST_SCHEMA },
      clustering: { fields: ['object'] },
    });
    expect(MANIFEST_SCHEMA.map((f) => `${f.name} ${f.type}`)).toEqual(['object STRING', 'generation INT64', 'rows INT64', 'job_id STRING', 'loaded_at TIMESTAMP']);
  });

  it('loads a batch in one deterministic query job over a temporary external table', async () => {
    const jobId = loadJobId(`${PROJECT}.flights_ds.flights`, items);
    fake.onJob = () => ({ result: manifestResult([['flights/a.csv', items[1]!.generation, '3', jobId], ['flights/b.csv', items[0]!.generation, '0', jobId]]) });

    const outcomes = await warehouse.load(items);

    expect(jobId).toMatch(/^load_[0-9a-f]{40}$/);
    expect(loadJobId(`${PROJECT}.flights_ds.flights`, [...items].reverse())).toBe(jobId);
    expect(loadJobId(`${PROJECT}.flights_ds.flights`, [items[0]!, { ...items[1]!, generation: '1700000000000009' }])).not.toBe(jobId);
    expect(loadJobId(`${PROJECT}.other_ds.flights`, items)).not.toBe(jobId);

    const [insert] = jobInserts();
    const job = insert?.body as { jobReference: Record<string, string>; configuration: Record<string, any> };
    expect(job.jobReference).toEqual({ projectId: PROJECT, jobId, location: 'europe-west1' });
    expect(job.configuration.jobTimeoutMs).toBe('120000');
    const q = job.configuration.query;
    // Sized from the batch: 1 GiB for the manifest and per-statement minimums, plus 4× the 500 MB of files.
    expect(q).toMatchObject({ useLegacySql: false, parameterMode: 'NAMED', maximumBytesBilled: String(1024 ** 3 + 4 * 500_000_000) });
    // DML jobs write through their statements: BigQuery rejects a destination table or write disposition on them.
    expect(q.destinationTable).toBeUndefined();
    expect(q.writeDisposition).toBeUndefined();
    expect(q.tableDefinitions).toEqual({
      staged: {
        sourceFormat: 'CSV',
        sourceUris: ['gs://bkt/flights/b.csv', 'gs://bkt/flights/a.csv'],
        schema: { fields: bigQueryCanonicalCsvSchema() },
        csvOptions: { skipLeadingRows: '1', allowQuotedNewlines: true, encoding: 'UTF-8' },
        maxBadRecords: 0,
      },
    });
    expect(q.query).toBe(LOAD_SCRIPT);
    expect(q.queryParameters).toEqual([
      {
        name: 'files',
        parameterType: {
          type: 'ARRAY',
          arrayType: {
            type: 'STRUCT',
            structTypes: [
              { name: 'object', type: { type: 'STRING' } },
              { name: 'generation', type: { type: 'INT64' } },
              { name: 'uri', type: { type: 'STRING' } },
            ],
          },
        },
        parameterValue: {
          arrayValues: items.map((i) => ({ structValues: { object: { value: i.object }, generation: { value: i.generation }, uri: { value: i.uri } } })),
        },
      },
      { name: 'job_id', parameterType: { type: 'STRING' }, parameterValue: { value: jobId } },
    ]);

    expect(outcomes).toEqual([
      { object: 'flights/a.csv', generation: '1700000000000001', status: 'loaded', rows: 3 },
      { object: 'flights/b.csv', generation: '1700000000000002', status: 'loaded', rows: 0 },
    ]);
    expect(fake.find('GET', /\/queries\//)[0]?.query.location).toBe('europe-west1');
    // The request count behind the load-job-vs-query-job decision (docs/design.md): one job, three requests.
    expect(fake.requests.map((r) => `${r.method} ${r.path.replace(jobId, '<job>')}`)).toEqual([
      'POST /bigquery/v2/projects/demo-project/jobs',
      'GET /bigquery/v2/projects/demo-project/jobs/<job>',
      'GET /bigquery/v2/projects/demo-project/queries/<job>',
    ]);
  });

  it('reports items an earlier job loaded as duplicates', async () => {
    const jobId = loadJobId(`${PROJECT}.flights_ds.flights`, items);
    fake.onJob = () => ({ result: manifestResult([['flights/a.csv', items[1]!.generation, '3', 'load_earlier'], ['flights/b.csv', items[0]!.generation, '5', jobId]]) });
    expect(await warehouse.load(items)).toEqual([
      { object: 'flights/a.csv', generation: '1700000000000001', status: 'duplicate', rows: 3 },
      { object: 'flights/b.csv', generation: '1700000000000002', status: 'loaded', rows: 5 },
    ]);
  });

  it('on 409 reuses the existing job: waits for it and returns its outcome, submitting nothing new', async () => {
    const jobId = loadJobId(`${PROJECT}.flights_ds.flights`, items);
    fake.seedJob(PROJECT, jobId, 'europe-west1', {
      runningPolls: 2,
      result: manifestResult([['flights/a.csv', items[1]!.generation, '3', jobId], ['flights/b.csv', items[0]!.generation, '4', jobId]]),
    });
    fake.onJob = () => {
      throw new Error('a second job must not be created');
    };

    const outcomes = await warehouse.load([...items].reverse());

    expect(jobInserts()).toHaveLength(1);
    expect(fake.jobs.size).toBe(1);
    // The first jobs.get answers RUNNING: the results are read only after the second says DONE.
    expect(fake.find('GET', new RegExp(`/jobs/${jobId}$`))).toHaveLength(2);
    expect(outcomes.map((o) => [o.object, o.status, o.rows])).toEqual([
      ['flights/a.csv', 'loaded', 3],
      ['flights/b.csv', 'loaded', 4],
    ]);
  });

  it('retries a failed job under the next id of its sequence, since the failed id answers 409 forever', async () => {
    const jobId = loadJobId(`${PROJECT}.flights_ds.flights`, items);
    let submitted = 0;
    fake.onJob = (job) => {
      submitted += 1;
      if (submitted === 1) return { error: { reason: 'backendError', message: 'Backend error. Job aborted.' } };
      const id = (job.jobReference as { jobId: string }).jobId;
      return { result: manifestResult([['flights/a.csv', items[1]!.generation, '3', id], ['flights/b.csv', items[0]!.generation, '4', id]]) };
    };

    await expect(warehouse.load(items)).rejects.toMatchObject({ name: 'WarehouseUnavailableError', cause: { reason: 'backendError' } });
    const outcomes = await warehouse.load(items);

    expect(jobInserts().map((r) => (r.body as { jobReference: { jobId: string } }).jobReference.jobId)).toEqual([jobId, jobId, `${jobId}_retry1`]);
    const retry = jobInserts()[2]?.body as { configuration: { query: { queryParameters: unknown[] } } };
    expect(retry.configuration.query.queryParameters[1]).toEqual({ name: 'job_id', parameterType: { type: 'STRING' }, parameterValue: { value: `${jobId}_retry1` } });
    expect(outcomes.map((o) => [o.object, o.status, o.rows])).toEqual([
      ['flights/a.csv', 'loaded', 3],
      ['flights/b.csv', 'loaded', 4],
    ]);
    // A third flush of the same batch finds the successful retry and waits for it: no fourth job.
    expect((await warehouse.load(items)).map((o) => o.status)).toEqual(['loaded', 'loaded']);
    expect(fake.jobs.size).toBe(2);
  });

  it.each([
    ['as it is created', 0],
    ['while it runs', 2],
  ])('maps a job that fails %s to an error carrying BigQuery reason and message', async (_when, runningPolls) => {
    const message = 'Error while reading data, error message: CSV processing encountered too many errors; File: gs://bkt/flights/a.csv';
    fake.onJob = () => ({ runningPolls, error: { reason: 'invalid', message } });
    const failure = warehouse.load(items);
    await expect(failure).rejects.toBeInstanceOf(BigQueryJobError);
    await expect(failure).rejects.toMatchObject({ reason: 'invalid', message: expect.stringContaining(message) });
  });

  it.each([...TRANSIENT_JOB_REASONS])('reports a job that ends with %s as the warehouse unavailable, not as a fault of the files', async (reason) => {
    fake.onJob = () => ({ runningPolls: 1, error: { reason, message: 'An internal error occurred and the request could not be completed.' } });
    const failure = warehouse.load(items);
    await expect(failure).rejects.toBeInstanceOf(WarehouseUnavailableError);
    await expect(failure).rejects.toMatchObject({ cause: { name: 'BigQueryJobError', reason } });
  });

  it('runs a query in one jobs.query request (JOB_CREATION_OPTIONAL) with typed parameters, byte cap, timeout and location, and returns plain rows', async () => {
    const spec: QuerySpec = {
      select: ['flight_date', 'carrier', 'dep_delay', 'time_hour', 'flight'],
      filters: [
        { column: 'origin', op: 'in', values: ['JFK', 'EWR'] },
        { column: 'dep_delay', op: 'gt', value: 10.5 },
        { column: 'time_hour', op: 'gte', value: '2013-01-01 05:00:00' },
        { column: 'flight_date', op: 'lte', value: '2013-01-31' },
        { column: 'carrier', op: 'ilike', value: 'u%' },
      ],
      order: [{ column: 'flight', direction: 'asc', nulls: 'last' }],
      after: [1545],
      limit: 2,
    };
    fake.onJob = () => ({
      result: {
        schema: {
          fields: [
            { name: 'flight_date', type: 'DATE' },
            { name: 'carrier', type: 'STRING' },
            { name: 'dep_delay', type: 'FLOAT' },
            { name: 'time_hour', type: 'DATETIME' },
            { name: 'flight', type: 'INTEGER' },
          ],
        },
        rows: [
          ['2013-01-01', 'UA', '11.0', '2013-01-01T05:00:00', '1714'],
          ['2013-01-02', 'UA', null, '2013-01-02T06:00:00', '2001'],
        ],
      },
    });

    const result = await warehouse.query(spec);

    // One request, no job: jobs.query with the short query optimisation.
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /bigquery/v2/projects/demo-project/queries']);
    const request = jobsQueries()[0]?.body as Record<string, any>;
    expect(request).toEqual({
      query: compileSelect(spec, bigQueryDialect(`${PROJECT}.flights_ds.flights`)).sql,
      useLegacySql: false,
      parameterMode: 'NAMED',
      queryParameters: expect.any(Array),
      maximumBytesBilled: '5000000000',
      jobTimeoutMs: '120000',
      timeoutMs: 10_000,
      location: 'europe-west1',
      jobCreationMode: 'JOB_CREATION_OPTIONAL',
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      formatOptions: { useInt64Timestamp: true },
    });
    expect(request.query).toContain('FROM `demo-project.flights_ds.flights`');
    expect(request.queryParameters).toEqual([
      { name: 'p0', parameterType: { type: 'ARRAY', arrayType: { type: 'STRING' } }, parameterValue: { arrayValues: [{ value: 'JFK' }, { value: 'EWR' }] } },
      { name: 'p1', parameterType: { type: 'FLOAT64' }, parameterValue: { value: '10.5' } },
      { name: 'p2', parameterType: { type: 'DATETIME' }, parameterValue: { value: '2013-01-01 05:00:00' } },
      { name: 'p3', parameterType: { type: 'DATE' }, parameterValue: { value: '2013-01-31' } },
      { name: 'p4', parameterType: { type: 'STRING' }, parameterValue: { value: 'u%' } },
      { name: 'p5', parameterType: { type: 'INT64' }, parameterValue: { value: '1545' } },
    ]);
    expect(result).toEqual({
      columns: ['flight_date', 'carrier', 'dep_delay', 'time_hour', 'flight'],
      rows: [
        { flight_date: '2013-01-01', carrier: 'UA', dep_delay: 11, time_hour: '2013-01-01 05:00:00', flight: 1714 },
        { flight_date: '2013-01-02', carrier: 'UA', dep_delay: null, time_hour: '2013-01-02 06:00:00', flight: 2001 },
      ],
    });
  });

  it('shows _loaded_at (a DATETIME in UTC) as ISO 8601 with Z, and reads a TIMESTAMP from the microseconds useInt64Timestamp asks for', async () => {
    fake.onJob = () => ({
      result: {
        schema: { fields: [{ name: '_loaded_at', type: 'DATETIME' }, { name: 'loaded_at', type: 'TIMESTAMP' }, { name: 'time_hour', type: 'DATETIME' }] },
        rows: [['2026-11-30T13:00:00.120000', '1796043600123456', '2013-01-01T05:00:00']],
      },
    });
    const { rows } = await warehouse.query({ select: ['_loaded_at', 'time_hour'], filters: [], order: [], limit: 1 });
    expect(rows[0]).toEqual({ _loaded_at: '2026-11-30 13:00:00.120000', loaded_at: '2026-11-30T13:00:00.123456Z', time_hour: '2013-01-01 05:00:00' });
    expect(presentRow(rows[0]!)).toMatchObject({ _loaded_at: '2026-11-30T13:00:00.12Z', time_hour: '2013-01-01 05:00:00' });
  });

  it('reads a query that outlives the jobs.query wait from the job BigQuery made for it', async () => {
    fake.onJob = () => ({ runningPolls: 2, result: { schema: { fields: [{ name: 'count', type: 'INTEGER' }] }, rows: [['7']] } });
    expect(await warehouse.count({ select: ['carrier'], filters: [], order: [], limit: 1 })).toBe(7);
    expect(jobsQueries()).toHaveLength(1);
    expect(jobInserts()).toHaveLength(0);
    // Polled until DONE, then the results read once.
    expect(fake.find('GET', /\/jobs\/job_1$/)).toHaveLength(2);
    expect(fake.find('GET', /\/queries\/job_1$/)).toHaveLength(1);
  });

  it('counts with the same filters, no keyset and no limit, as a typed-parameter job', async () => {
    const spec: QuerySpec = {
      select: ['carrier'],
      filters: [{ column: 'carrier', op: 'eq', value: 'UA' }],
      order: [{ column: 'flight', direction: 'asc', nulls: 'last' }],
      after: [1545],
      limit: 2,
    };
    fake.onJob = () => ({ result: { schema: { fields: [{ name: 'count', type: 'INTEGER' }] }, rows: [['12345']] } });
    expect(await warehouse.count(spec)).toBe(12345);
    const request = jobsQueries()[0]?.body as Record<string, any>;
    expect(request.query).toBe(compileCount(spec, bigQueryDialect(`${PROJECT}.flights_ds.flights`)).sql);
    expect(request.query).not.toMatch(/LIMIT|1545/);
    expect(request.queryParameters).toEqual([{ name: 'p0', parameterType: { type: 'STRING' }, parameterValue: { value: 'UA' } }]);
    expect(request).toMatchObject({ maximumBytesBilled: '5000000000', jobCreationMode: 'JOB_CREATION_OPTIONAL' });
  });

  it('bounds the partition column when year and month are pinned, so BigQuery bills one month of partitions', async () => {
    fake.onJob = () => ({ result: { schema: { fields: [{ name: 'carrier', type: 'STRING' }] }, rows: [] } });
    await warehouse.query({
      select: ['carrier'],
      filters: [{ column: 'year', op: 'eq', value: 2013 }, { column: 'month', op: 'eq', value: 2 }],
      order: [],
      limit: 10,
    });
    const request = jobsQueries()[0]?.body as Record<string, any>;
    expect(request.query).toMatch(/flight_date >= @p2 AND flight_date <= @p3/);
    expect(request.queryParameters.slice(2)).toEqual([
      { name: 'p2', parameterType: { type: 'DATE' }, parameterValue: { value: '2013-02-01' } },
      { name: 'p3', parameterType: { type: 'DATE' }, parameterValue: { value: '2013-02-28' } },
    ]);
  });
});

describe('BigQueryWarehouse.exportCsv against the REST API', () => {
  // Only its uri() is used: where BigQuery writes.
  const store = new GcsObjectStore('bkt', new Storage({ projectId: PROJECT }));
  const target = { store, prefix: 'exports/0abc/', jobId: 'export_0abc' };
  const spec: ExportSpec = {
    select: ['carrier', 'dep_delay'],
    filters: [
      { column: 'origin', op: 'in', values: ['JFK', 'EWR'] },
      { column: 'time_hour', op: 'gte', value: '2013-06-01 00:00:00' },
    ],
    order: [{ column: 'dep_delay', direction: 'desc', nulls: 'first' }],
  };
  const exported = (rowCount: string) => ({ statistics: { query: { statementType: 'EXPORT_DATA', exportDataStatistics: { fileCount: '3', rowCount } } } });

  it('runs one EXPORT DATA query job: gzip CSV with a header to the export prefix, the compiled SELECT, typed parameters and the byte cap', async () => {
    fake.onJob = () => ({ ...exported('1234567'), runningPolls: 2 });

    const outcome = await warehouse.exportCsv(spec, ['dep_delay', 'carrier', 'flight', 'flight_date', 'time_hour', '_loaded_at'], target);

    expect(outcome).toEqual({ rows: 1_234_567 });
    const [insert] = jobInserts();
    const job = insert?.body as { jobReference: Record<string, string>; configuration: Record<string, any> };
    expect(job.jobReference).toEqual({ projectId: PROJECT, jobId: 'export_0abc', location: 'europe-west1' });
    expect(job.configuration.jobTimeoutMs).toBe('120000');
    const q = job.configuration.query;
    // Every cell is written as text by the rules of core/cell-text.ts (the same as GET /getdata?format=csv); the sort is on the typed values.
    expect(q.query).toBe(
      [
        "EXPORT DATA OPTIONS (uri = 'gs://bkt/exports/0abc/*.csv.gz', format = 'CSV', compression = 'GZIP', header = true, overwrite = true) AS",
        'SELECT IF(r.`dep_delay` = TRUNC(r.`dep_delay`) AND ABS(r.`dep_delay`) < 9007199254740992, CAST(CAST(r.`dep_delay` AS INT64) AS STRING), CAST(r.`dep_delay` AS STRING)) AS `dep_delay`,' +
          ' r.`carrier` AS `carrier`,' +
          ' CAST(r.`flight` AS STRING) AS `flight`,' +
          " FORMAT_DATE('%Y-%m-%d', r.`flight_date`) AS `flight_date`," +
          " FORMAT_DATETIME('%Y-%m-%d %H:%M:%E*S', r.`time_hour`) AS `time_hour`," +
          " FORMAT_DATETIME('%Y-%m-%dT%H:%M:%E*SZ', r.`_loaded_at`) AS `_loaded_at`",
        'FROM (',
        'SELECT dep_delay, carrier, flight, flight_date, time_hour, _loaded_at',
        'FROM `demo-project.flights_ds.flights`',
        'WHERE origin IN UNNEST(@p0) AND time_hour >= @p1',
        ') AS r',
        'ORDER BY r.`dep_delay` DESC NULLS FIRST',
      ].join('\n'),
    );
    expect(q).toMatchObject({ useLegacySql: false, parameterMode: 'NAMED', maximumBytesBilled: '5000000000' });
    expect(q.queryParameters).toEqual([
      { name: 'p0', parameterType: { type: 'ARRAY', arrayType: { type: 'STRING' } }, parameterValue: { arrayValues: [{ value: 'JFK' }, { value: 'EWR' }] } },
      { name: 'p1', parameterType: { type: 'DATETIME' }, parameterValue: { value: '2013-06-01 00:00:00' } },
    ]);
    // The first poll saw it RUNNING: the outcome is the finished job's, not a running job's empty statistics.
    expect(fake.find('GET', /\/jobs\/export_0abc$/).length).toBe(2);
  });

  it('reuses the job of an earlier attempt (409) instead of exporting twice', async () => {
    fake.seedJob(PROJECT, 'export_0abc', config.location, exported('42'));
    expect(await warehouse.exportCsv(spec, ['carrier'], target)).toEqual({ rows: 42 });
    expect(jobInserts()).toHaveLength(1);
  });

  it('reports an export job BigQuery failed itself as an outage, and runs the retry under the next id: a failed id answers 409 forever', async () => {
    let submitted = 0;
    fake.onJob = () => (++submitted === 1 ? { error: { reason: 'backendError', message: 'Backend error. Job aborted.' } } : exported('42'));
    await expect(warehouse.exportCsv(spec, ['carrier'], target)).rejects.toBeInstanceOf(WarehouseUnavailableError);
    expect(await warehouse.exportCsv(spec, ['carrier'], target)).toEqual({ rows: 42 });
    expect(jobInserts().map((r) => (r.body as { jobReference: { jobId: string } }).jobReference.jobId)).toEqual(['export_0abc', 'export_0abc', 'export_0abc_retry1']);
  });

  it('reports a failed export with BigQuery’s reason', async () => {
    fake.onJob = () => ({ error: { reason: 'bytesBilledLimitExceeded', message: 'Query exceeded limit for bytes billed: 5000000000.' } });
    await expect(warehouse.exportCsv(spec, ['carrier'], target)).rejects.toMatchObject({ name: 'BigQueryJobError', reason: 'bytesBilledLimitExceeded' });
  });

  it('refuses a destination that is not a plain gs:// URI, rather than splice it into the statement', async () => {
    await expect(warehouse.exportCsv(spec, ['carrier'], { ...target, prefix: "exports/x'; DROP/" })).rejects.toThrow(/not a plain gs:\/\/ URI/);
    expect(jobInserts()).toHaveLength(0);
  });
});
