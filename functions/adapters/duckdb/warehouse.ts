/**
 * The embedded warehouse: DuckDB in one file. A batch loads in one
 * transaction together with its manifest rows; the manifest's primary key on
 * (object, generation) makes a repeated or concurrent load of the same file
 * add nothing.
 */
import {
  DuckDBInstance,
  JsonDuckDBValueConverter,
  LIST,
  listValue,
  type DuckDBConnection,
  type DuckDBMaterializedResult,
  type DuckDBPreparedStatement,
  type DuckDBType,
  BIGINT,
  DOUBLE,
  VARCHAR,
  TIMESTAMP,
  DATE,
} from '@duckdb/node-api';
import { randomUUID } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { batches } from '../../core/batches.js';
import { crashPoint } from '../../core/crash-point.js';
import { concatenatedCsv, errorOfFiles } from './concatenated-csv.js';
import { CANONICAL_HEADER, duckDbCanonicalCsvColumns, duckDbTableDdl, COLUMNS, QUERYABLE_COLUMNS, TABLE } from '../../core/schema.js';
import { compileCount, compileExport, compileSelect, duckDbDialect } from '../../core/sql.js';
import type { ExportOutcome, ExportTarget, LoadItem, LoadOutcome, QueryResult, Warehouse } from '../../core/ports.js';
import type { CompiledQuery, ExportSpec, ParamType, QuerySpec, Scalar, TypedParam } from '../../core/query-spec.js';

export const MANIFEST = '_loads';

/** DuckDB writes one file; named like BigQuery's first shard, so clients see one naming scheme. */
export const FIRST_EXPORT_FILE = '000000000000.csv.gz';

const PARAM_TYPES: Record<ParamType, DuckDBType> = {
  integer: BIGINT,
  number: DOUBLE,
  string: VARCHAR,
  timestamp: TIMESTAMP,
  date: DATE,
};

const canonicalColumns = Object.entries(duckDbCanonicalCsvColumns())
  .map(([name, type]) => `'${name}': '${type}'`)
  .join(', ');

const csvOptions = (columns: string): string => `header = true, auto_detect = false, columns = {${columns}},
  delim = ',', quote = '"', escape = '"', nullstr = '', strict_mode = true`;
const CSV_OPTIONS = csvOptions(canonicalColumns);

const DATA_COLUMNS = COLUMNS.map((c) => c.name).join(', ');

/** One file per statement: a large file (DuckDB reads it on all threads), or a batch's only file. */
const LOAD_ONE_SQL = `
INSERT INTO ${TABLE}
SELECT ${DATA_COLUMNS}, make_date(year, month, day), $object, $generation, _source_line, $loadedAt::TIMESTAMP
FROM read_csv($path, ${CSV_OPTIONS})`;

/**
 * Small files, many per statement: their records concatenated into one CSV (concatenatedCsv), each
 * prefixed with its file's 1-based index in the batch, and that one file inserted, each row's
 * lineage taken from the batch's lists by its index. DuckDB spends about as much CPU per file of a
 * multi-file read_csv as on a file's 100 rows (docs/benchmarks.md, "The loader's path"). An index
 * out of the lists' range gives NULL lineage, which fails the table's NOT NULL.
 */
export const LOAD_CONCATENATED_SQL = `
INSERT INTO ${TABLE}
SELECT ${DATA_COLUMNS}, make_date(year, month, day), ($objects)[_file], ($generations)[_file], _source_line, $loadedAt::TIMESTAMP
FROM read_csv($path, ${csvOptions(`'_file': 'INTEGER', ${canonicalColumns}`)})`;

/**
 * Files up to this size load together in one statement: per statement DuckDB spends milliseconds of
 * CPU however small the file (docs/benchmarks.md, "DuckDB's load of a batch"). A larger
 * file, or one of unknown size, loads alone, on all of DuckDB's threads and with no staging copy.
 */
const SHARED_READ_MAX_BYTES = 1024 * 1024;
/** Files per shared read. */
const SHARED_READ_MAX_FILES = 128;
/** Bytes per shared read: bounds its concatenated file, and the memory that builds it (the files read, and their join). */
const SHARED_READ_MAX_TOTAL_BYTES = 16 * 1024 * 1024;

/** One row per file loaded; its primary key is what makes a second load of the same file fail instead of adding rows. */
export const MANIFEST_DDL = `CREATE TABLE IF NOT EXISTS ${MANIFEST} (
  object VARCHAR NOT NULL, generation BIGINT NOT NULL, rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL,
  PRIMARY KEY (object, generation))`;

export const MANIFEST_INSERT_SQL = `INSERT INTO ${MANIFEST} SELECT unnest($objects), unnest($generations), unnest($rows), $loadedAt::TIMESTAMP`;

/** The manifest rows of a batch's objects (any generation); exported so a test can check its plan uses the index. */
export const MANIFEST_LOOKUP_SQL = `SELECT object, generation::VARCHAR AS generation, rows FROM ${MANIFEST} WHERE object = ANY($objects)`;

/**
 * Objects per manifest lookup. DuckDB turns `object = ANY($objects)` into a join and hands the
 * index the join's keys as a filter only up to `dynamic_or_filter_threshold` (50 by default) of them;
 * with more it scans the whole manifest (EXPLAIN ANALYZE: Index Scan up to 50, Sequential Scan from 51).
 */
const MANIFEST_LOOKUP_FILES = 50;

/** Statement shapes kept prepared on each connection, least recently used dropped first: a page's shape repeats with new values, a load's too. */
const PREPARED_PER_CONNECTION = 32;

/** The integer column of the loader's lookups and counts, read as a number. */
const COUNTS: ReadonlySet<string> = new Set(['rows']);

/** Integer columns come back from DuckDB as BIGINT strings; JSON clients want numbers. */
const NUMERIC_INTEGERS = new Set([...QUERYABLE_COLUMNS].filter(([name, t]) => t === 'integer' && name !== '_source_generation').map(([n]) => n));

/** The integer results of a compiled query that fit a JSON number (generations do not). */
const numericIntegers = (compiled: CompiledQuery): Set<string> =>
  new Set(compiled.columns.filter((c) => c.type === 'integer' && c.name !== '_source_generation').map((c) => c.name));

/** Integers arrive as numbers, or as decimal strings when they exceed 2^53. */
const bigint = (v: Scalar): bigint => BigInt(v as number | string);

/** DuckDB values and types for compiled parameters; exported so the query benchmark binds exactly as the warehouse does. */
export function bindParams(params: TypedParam[]): { values: Record<string, unknown>; types: Record<string, DuckDBType> } {
  const values: Record<string, unknown> = {};
  const types: Record<string, DuckDBType> = {};
  for (const p of params) {
    const type = PARAM_TYPES[p.type];
    if (p.type === 'timestamp' || p.type === 'date') {
      // Sent as text and cast in the SQL (see duckDbDialect): the parser has already checked the format.
      values[p.name] = Array.isArray(p.value) ? listValue(p.value) : p.value;
    } else if (Array.isArray(p.value)) {
      values[p.name] = listValue(p.value.map((v) => (p.type === 'integer' ? bigint(v) : v)));
      types[p.name] = LIST(type);
    } else if (p.type === 'integer' && p.value !== null) {
      values[p.name] = bigint(p.value);
      types[p.name] = type;
    } else {
      values[p.name] = p.value;
      types[p.name] = type;
    }
  }
  return { values, types };
}

/** A file's identity in a batch and in the manifest. */
const fileKey = (file: { object: string; generation: string }): string => `${file.object}#${file.generation}`;

/** A materialized result's rows as JSON-ready objects (as DuckDBResultReader.getRowObjectsJson gives them), read without awaiting. */
function rowsOf(result: DuckDBMaterializedResult, integers: ReadonlySet<string>): QueryResult {
  const columns = result.deduplicatedColumnNames();
  const rows: Record<string, unknown>[] = [];
  for (let c = 0; c < result.chunkCount; c++) {
    const chunk = result.getChunk(c);
    for (let r = 0; r < chunk.rowCount; r++) {
      const values = chunk.convertRowValues(r, JsonDuckDBValueConverter);
      const row: Record<string, unknown> = {};
      columns.forEach((name, i) => {
        const value = values[i] ?? null;
        row[name] = value !== null && integers.has(name) ? Number(value) : value;
      });
      rows.push(row);
    }
  }
  return { columns, rows };
}

export class DuckDbWarehouse implements Warehouse {
  private instance?: DuckDBInstance;
  /** Read connections not in use; a query waits for one rather than queueing behind a busy one. */
  private idle: DuckDBConnection[] = [];
  private readonly waiting: ((c: DuckDBConnection) => void)[] = [];
  private readers: DuckDBConnection[] = [];
  /** Per connection, its prepared statements by SQL, in order of last use. */
  private prepared = new Map<DuckDBConnection, Map<string, DuckDBPreparedStatement>>();
  private writer?: DuckDBConnection;
  /** Loads share one connection, and a connection holds one transaction: they run one at a time. */
  private loads: Promise<unknown> = Promise.resolve();

  /** `file` is a path, or ':memory:'; `threads` 0 keeps DuckDB's default (one per core). */
  constructor(
    private readonly file: string,
    private readonly readConnections = 4,
    private readonly threads = 0,
  ) {}

  /**
   * Where COPY writes an export before it goes to the bucket, and a batch's concatenated small files
   * are read from: beside the database file, so that what an export or load killed mid-way left is
   * removed by the next open (below) instead of piling up in the OS temp directory.
   */
  private get scratchDir(): string {
    return this.file === ':memory:' ? os.tmpdir() : `${this.file}.exports`;
  }

  async init(): Promise<void> {
    if (this.file !== ':memory:') await fs.mkdir(path.dirname(this.file), { recursive: true });
    this.instance = await DuckDBInstance.create(this.file, this.threads > 0 ? { threads: String(this.threads) } : undefined);
    // DuckDB's file lock is held from here: no other process has an export under way in the scratch directory.
    if (this.file !== ':memory:') await fs.rm(this.scratchDir, { recursive: true, force: true });
    this.writer = await this.instance.connect();
    // Loads only: every query orders its rows by explicit keys, never by where they sit in the table, so the
    // writer's threads may append their parts of a file in any order. That skips the ordered batch insert,
    // about a quarter of a large load's CPU (docs/benchmarks.md, Loader). Read connections keep the default.
    await this.writer.run('SET SESSION preserve_insertion_order = false');
    await this.writer.run(duckDbTableDdl());
    await this.writer.run(MANIFEST_DDL);
    // DuckDB 1.5 does not scan the two-column primary key for a lookup; a one-column index on `object` it does
    // (EXPLAIN: Index Scan), so a batch's manifest lookup costs the same with 200k files loaded as with none.
    await this.writer.run(`CREATE INDEX IF NOT EXISTS ${MANIFEST}_object ON ${MANIFEST} (object)`);
    for (let i = 0; i < this.readConnections; i++) this.readers.push(await this.instance.connect());
    this.idle = [...this.readers];
  }

  load(items: LoadItem[]): Promise<LoadOutcome[]> {
    const run = this.loads.then(() => this.loadNow(items));
    this.loads = run.catch(() => undefined);
    return run;
  }

  /**
   * One transaction per batch: one manifest lookup (an index lookup, so its cost does not grow
   * with the manifest), the new files' rows, one manifest insert. Small new files are read
   * together, up to SHARED_READ_MAX_FILES and SHARED_READ_MAX_TOTAL_BYTES per statement; a large one, or a batch's only new file, alone.
   */
  private async loadNow(items: LoadItem[]): Promise<LoadOutcome[]> {
    const db = this.connection(this.writer);
    await db.run('BEGIN TRANSACTION');
    try {
      const loadedAt = new Date().toISOString();
      const previous = await this.loadedBefore(db, items);
      const fresh = items.filter((i) => !previous.has(fileKey(i)));
      const small = fresh.filter((i) => i.bytes !== undefined && i.bytes <= SHARED_READ_MAX_BYTES);
      const shared = small.length > 1 ? small : [];
      const rows = new Map<string, number>();
      for (const group of batches(shared, SHARED_READ_MAX_FILES, SHARED_READ_MAX_TOTAL_BYTES)) {
        for (const [key, count] of await this.loadTogether(db, group, loadedAt)) rows.set(key, count);
      }
      const together = new Set(shared);
      const alone = fresh.filter((i) => !together.has(i));
      for (const item of alone) {
        const result = await this.runPrepared(db, LOAD_ONE_SQL, { path: item.uri, object: item.object, generation: BigInt(item.generation), loadedAt });
        rows.set(fileKey(item), Number(result.rowsChanged));
      }
      const outcome = (i: LoadItem): LoadOutcome => {
        const before = previous.get(fileKey(i));
        return before === undefined
          ? { object: i.object, generation: i.generation, status: 'loaded', rows: rows.get(fileKey(i)) ?? 0 }
          : { object: i.object, generation: i.generation, status: 'duplicate', rows: before };
      };
      const loaded = fresh.map(outcome);
      if (loaded.length) {
        await this.runPrepared(
          db,
          MANIFEST_INSERT_SQL,
          {
            objects: listValue(loaded.map((o) => o.object)),
            generations: listValue(loaded.map((o) => BigInt(o.generation))),
            rows: listValue(loaded.map((o) => BigInt(o.rows))),
            loadedAt,
          },
          { objects: LIST(VARCHAR), generations: LIST(BIGINT), rows: LIST(BIGINT), loadedAt: VARCHAR },
        );
      }
      crashPoint('during-load');
      await db.run('COMMIT');
      return items.map(outcome);
    } catch (e) {
      await db.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /** Rows recorded for those of `items` already in the manifest, by fileKey; each lookup served by the index on `object`. */
  private async loadedBefore(db: DuckDBConnection, items: LoadItem[]): Promise<Map<string, number>> {
    const previous = new Map<string, number>();
    for (let i = 0; i < items.length; i += MANIFEST_LOOKUP_FILES) {
      const objects = items.slice(i, i + MANIFEST_LOOKUP_FILES).map((item) => item.object);
      const found = rowsOf(await this.runPrepared(db, MANIFEST_LOOKUP_SQL, { objects: listValue(objects) }, { objects: LIST(VARCHAR) }), COUNTS);
      for (const r of found.rows) previous.set(fileKey({ object: String(r.object), generation: String(r.generation) }), r.rows as number);
    }
    return previous;
  }

  /** Loads `items` with one read of their files concatenated; rows per file, by fileKey. */
  private async loadTogether(db: DuckDBConnection, items: LoadItem[], loadedAt: string): Promise<Map<string, number>> {
    // Read synchronously: each is small (at most SHARED_READ_MAX_BYTES, SHARED_READ_MAX_TOTAL_BYTES together), and an
    // asynchronous read costs four trips through libuv's pool and their promises, about 0.15 ms of CPU per file (docs/benchmarks.md, "Where a batch's CPU goes in DuckDB").
    const files = items.map((i) => ({ name: i.uri, csv: readFileSync(i.uri) }));
    const { csv, records } = concatenatedCsv(CANONICAL_HEADER.join(','), files);
    await fs.mkdir(this.scratchDir, { recursive: true });
    const batchFile = path.join(this.scratchDir, `load-${randomUUID()}.csv`);
    try {
      await fs.writeFile(batchFile, csv);
      const result = await this.runPrepared(
        db,
        LOAD_CONCATENATED_SQL,
        { path: batchFile, objects: listValue(items.map((i) => i.object)), generations: listValue(items.map((i) => BigInt(i.generation))), loadedAt },
        { path: VARCHAR, objects: LIST(VARCHAR), generations: LIST(BIGINT), loadedAt: VARCHAR },
      ).catch((e: Error) => {
        // A new error, not the message changed: the stack repeats the message, and a log prints both.
        throw new Error(errorOfFiles(e.message, batchFile, files, records));
      });
      const expected = records.reduce((sum, n) => sum + n, 0);
      // The per-file counts are the records counted in JavaScript; were DuckDB to read them differently, the batch fails whole.
      if (Number(result.rowsChanged) !== expected) throw new Error(`read ${result.rowsChanged} rows of ${items.length} files holding ${expected} records`);
    } finally {
      await fs.rm(batchFile, { force: true });
    }
    return new Map(items.map((item, i) => [fileKey(item), records[i]!]));
  }

  async query(spec: QuerySpec): Promise<QueryResult> {
    const compiled = compileSelect(spec, duckDbDialect());
    return this.run(compiled.sql, compiled.params, numericIntegers(compiled));
  }

  async count(spec: QuerySpec): Promise<number> {
    const compiled = compileCount(spec, duckDbDialect());
    const { rows } = await this.run(compiled.sql, compiled.params, numericIntegers(compiled));
    return rows[0]?.count as number;
  }

  /**
   * COPY writes a local file (DuckDB cannot write to the object store), which
   * is then streamed into the bucket; the result's order is kept because
   * DuckDB preserves insertion order for COPY of an ordered query.
   */
  async exportCsv(spec: ExportSpec, columns: readonly string[], target: ExportTarget): Promise<ExportOutcome> {
    const compiled = compileExport(spec, columns, duckDbDialect());
    await fs.mkdir(this.scratchDir, { recursive: true });
    const dir = await fs.mkdtemp(path.join(this.scratchDir, 'flights-export-'));
    const file = path.join(dir, FIRST_EXPORT_FILE);
    try {
      const { values, types } = bindParams(compiled.params);
      const copy = `COPY (${compiled.sql}) TO '${file.replaceAll("'", "''")}' (FORMAT csv, HEADER, COMPRESSION gzip)`;
      const result = await this.withReader((db) => db.run(copy, values as never, types));
      await target.store.write(`${target.prefix}${FIRST_EXPORT_FILE}`, createReadStream(file), { contentType: 'application/gzip' });
      return { rows: Number(result.rowsChanged) };
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async ping(): Promise<void> {
    await this.withReader((db) => db.run('SELECT 1'));
  }

  /**
   * Runs compiled SQL on a read connection; rows as JSON-ready objects.
   *
   * One await on DuckDB per query, where runAndReadAll takes five (split the SQL, prepare, run, and
   * fetch each chunk and the end): every await is a turn of the event loop, and under `npm start`
   * that loop also runs ingest, whose turns last tens of ms while uploads arrive, so each await
   * cost a query one of them (docs/benchmarks.md, Query). Here the statement is prepared once per
   * reader and shape, and a run's result is materialized, so its chunks are read synchronously.
   */
  async run(sql: string, params: TypedParam[] = [], integers: ReadonlySet<string> = NUMERIC_INTEGERS): Promise<QueryResult> {
    const { values, types } = bindParams(params);
    const result = await this.withReader((db) => this.runPrepared(db, sql, values, types));
    return rowsOf(result, integers);
  }

  /** `sql` on `db`, prepared once per connection and shape: one await on DuckDB, its result materialized. */
  private async runPrepared(db: DuckDBConnection, sql: string, values: Record<string, unknown>, types?: Record<string, DuckDBType>): Promise<DuckDBMaterializedResult> {
    const statement = this.preparedOn(db, sql) ?? (await this.prepare(db, sql));
    statement.bind(values as never, types);
    return statement.run();
  }

  /** The statement already prepared for `sql` on this connection, now its most recently used. */
  private preparedOn(db: DuckDBConnection, sql: string): DuckDBPreparedStatement | undefined {
    const cache = this.prepared.get(db);
    const statement = cache?.get(sql);
    if (cache && statement) {
      cache.delete(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  private async prepare(db: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
    const statement = await db.prepare(sql);
    const cache = this.prepared.get(db) ?? new Map<string, DuckDBPreparedStatement>();
    this.prepared.set(db, cache);
    cache.set(sql, statement);
    for (const [oldest, dropped] of cache) {
      if (cache.size <= PREPARED_PER_CONNECTION) break;
      cache.delete(oldest);
      dropped.destroySync();
    }
    return statement;
  }

  private async withReader<T>(work: (db: DuckDBConnection) => Promise<T>): Promise<T> {
    if (!this.readers.length) throw new Error('DuckDbWarehouse used before init()');
    const db = this.idle.pop() ?? (await new Promise<DuckDBConnection>((resolve) => this.waiting.push(resolve)));
    try {
      return await work(db);
    } finally {
      const next = this.waiting.shift();
      if (next) next(db);
      else this.idle.push(db);
    }
  }

  async close(): Promise<void> {
    for (const c of [...this.readers, this.writer]) c?.closeSync();
    this.readers = [];
    this.idle = [];
    // Closing a connection has destroyed its prepared statements.
    this.prepared.clear();
    this.writer = undefined;
    this.instance?.closeSync();
    this.instance = undefined;
  }

  private connection(c: DuckDBConnection | undefined): DuckDBConnection {
    if (!c) throw new Error('DuckDbWarehouse used before init()');
    return c;
  }
}
