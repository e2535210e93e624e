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
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crashPoint } from '../../core/crash-point.js';
import { duckDbCanonicalCsvColumns, duckDbTableDdl, COLUMNS, QUERYABLE_COLUMNS, TABLE } from '../../core/schema.js';
import { compileCount, compileExport, compileSelect, duckDbDialect } from '../../core/sql.js';
import type { ExportOutcome, ExportTarget, LoadItem, LoadOutcome, QueryResult, Warehouse } from '../../core/ports.js';
import type { CompiledQuery, ExportSpec, ParamType, QuerySpec, Scalar, TypedParam } from '../../core/query-spec.js';

const MANIFEST = '_loads';

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

const LOAD_SQL = `
INSERT INTO ${TABLE}
SELECT ${COLUMNS.map((c) => c.name).join(', ')},
       make_date(year, month, day), $object, $generation, _source_line, $loadedAt::TIMESTAMP
FROM read_csv($path, header = true, auto_detect = false, columns = {${canonicalColumns}},
              delim = ',', quote = '"', escape = '"', nullstr = '', strict_mode = true)`;

/** Query shapes kept prepared on each read connection, least recently used dropped first: a page's shape repeats with new values. */
const PREPARED_PER_READER = 32;

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
  /** Per read connection, its prepared statements by SQL, in order of last use. */
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
   * Where COPY writes an export before it goes to the bucket: beside the database file, so that
   * what an export killed mid-way left is removed by the next open (below) instead of piling up in
   * the OS temp directory.
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
    await this.writer.run(`CREATE TABLE IF NOT EXISTS ${MANIFEST} (
      object VARCHAR NOT NULL, generation BIGINT NOT NULL, rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL,
      PRIMARY KEY (object, generation))`);
    for (let i = 0; i < this.readConnections; i++) this.readers.push(await this.instance.connect());
    this.idle = [...this.readers];
  }

  load(items: LoadItem[]): Promise<LoadOutcome[]> {
    const run = this.loads.then(() => this.loadNow(items));
    this.loads = run.catch(() => undefined);
    return run;
  }

  /**
   * One transaction per batch, and a fixed number of statements besides one
   * insert per new file: one manifest lookup for the whole batch, the insert
   * prepared once and bound per file, one manifest insert.
   */
  private async loadNow(items: LoadItem[]): Promise<LoadOutcome[]> {
    const db = this.connection(this.writer);
    const key = (object: string, generation: string): string => `${object}#${generation}`;
    await db.run('BEGIN TRANSACTION');
    try {
      const loadedAt = new Date().toISOString();
      const found = await db.runAndReadAll(
        `SELECT object, generation::VARCHAR AS generation, rows FROM ${MANIFEST} WHERE list_contains($objects, object)`,
        { objects: listValue(items.map((i) => i.object)) },
        { objects: LIST(VARCHAR) },
      );
      const previous = new Map(found.getRowObjectsJson().map((r) => [key(String(r.object), String(r.generation)), Number(r.rows)]));
      const outcomes: LoadOutcome[] = [];
      const load = await db.prepare(LOAD_SQL);
      try {
        for (const item of items) {
          const rows = previous.get(key(item.object, item.generation));
          if (rows !== undefined) {
            outcomes.push({ object: item.object, generation: item.generation, status: 'duplicate', rows });
            continue;
          }
          load.bind({ path: item.uri, object: item.object, generation: BigInt(item.generation), loadedAt });
          const inserted = await load.run();
          outcomes.push({ object: item.object, generation: item.generation, status: 'loaded', rows: Number(inserted.rowsChanged) });
        }
      } finally {
        load.destroySync();
      }
      const loaded = outcomes.filter((o) => o.status === 'loaded');
      if (loaded.length) {
        await db.run(
          `INSERT INTO ${MANIFEST} SELECT unnest($objects), unnest($generations), unnest($rows), $loadedAt::TIMESTAMP`,
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
      return outcomes;
    } catch (e) {
      await db.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
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
    const result = await this.withReader(async (db) => {
      const statement = this.preparedOn(db, sql) ?? (await this.prepare(db, sql));
      statement.bind(values as never, types);
      return statement.run();
    });
    return rowsOf(result, integers);
  }

  /** The statement already prepared for `sql` on this reader, now its most recently used. */
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
      if (cache.size <= PREPARED_PER_READER) break;
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
