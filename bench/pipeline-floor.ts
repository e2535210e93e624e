/**
 * The minimum pipeline's load into DuckDB, for bench/ingest.ts's pipeline floor (its server,
 * bench/pipeline-floor-server.ts) and for the same load measured alone in the bench's own process.
 * A batch of validated uploads (their canonical CSV, held in memory) goes into the `flights` table
 * and the manifest in one transaction, exactly once, each row with its lineage; nothing else: no
 * manifest lookup (nothing is delivered twice here), no bus, no records. Two ways to hand DuckDB
 * the rows, both measured (`LOADERS`): one `read_csv` of the batch concatenated into one file, as
 * our loader does, or DuckDB's Appender fed the rows parsed back from the canonical CSV.
 */
import {
  BIGINT,
  DATE,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBTimestampValue,
  LIST,
  TIMESTAMP,
  VARCHAR,
  listValue,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CANONICAL_HEADER, COLUMNS, TABLE, duckDbTableDdl, type ColumnType } from '../functions/core/schema.js';
import { concatenatedCsv } from '../functions/adapters/duckdb/concatenated-csv.js';
import { LOAD_CONCATENATED_SQL, MANIFEST, MANIFEST_DDL, MANIFEST_INSERT_SQL } from '../functions/adapters/duckdb/warehouse.js';
import { CsvRecords } from '../functions/ingest/csv-records.js';
import { DEFAULT_LIMITS } from '../functions/ingest/validator.js';

/** One validated upload: its canonical CSV (header, then rows ending in their source line). */
export interface FloorFile {
  object: string;
  generation: bigint;
  canonical: Buffer;
}

export type LoaderName = 'read_csv' | 'appender';
export const LOADER_NAMES: readonly LoaderName[] = ['read_csv', 'appender'];

/** Files per statement and per batch, as our loader's shared read (warehouse.ts): it bounds a batch's memory. */
export const FLOOR_BATCH_FILES = 128;

export interface FloorDb {
  /** Loads `files` in one transaction with their manifest rows; returns the rows added. */
  load(files: FloorFile[]): Promise<number>;
  /** Rows in `flights` and files in the manifest, read back from DuckDB. */
  counts(): Promise<{ rows: number; files: number }>;
  close(): Promise<void>;
}

/** A fresh database in `dir` (file and scratch space), its threads and the writer's session as ours sets them. */
export async function openFloorDb(dir: string, loader: LoaderName): Promise<FloorDb> {
  // Threads as ours has them: DUCKDB_THREADS, whose 0 or absence is DuckDB's default (one per core).
  const threads = Number(process.env.DUCKDB_THREADS ?? 0);
  const instance = await DuckDBInstance.create(path.join(dir, 'floor.duckdb'), threads > 0 ? { threads: String(threads) } : undefined);
  const db = await instance.connect();
  await db.run('SET SESSION preserve_insertion_order = false');
  await db.run(duckDbTableDdl());
  await db.run(MANIFEST_DDL);
  const insertManifest = await db.prepare(MANIFEST_INSERT_SQL);
  const addRows = loader === 'read_csv' ? await readCsvLoader(db, dir) : appenderLoader(db);
  let batch = 0;
  return {
    async load(files) {
      const loadedAt = new Date().toISOString();
      await db.run('BEGIN TRANSACTION');
      try {
        const rows = await addRows(files, loadedAt, batch++);
        insertManifest.bind(
          { objects: listValue(files.map((f) => f.object)), generations: listValue(files.map((f) => f.generation)), rows: listValue(rows.perFile.map(BigInt)), loadedAt },
          { objects: LIST(VARCHAR), generations: LIST(BIGINT), rows: LIST(BIGINT), loadedAt: VARCHAR },
        );
        await insertManifest.run();
        await db.run('COMMIT');
        return rows.total;
      } catch (e) {
        await db.run('ROLLBACK').catch(() => undefined);
        throw e;
      }
    },
    async counts() {
      const reader = await db.runAndReadAll(`SELECT (SELECT count(*) FROM ${TABLE})::INTEGER, (SELECT count(*) FROM ${MANIFEST})::INTEGER`);
      const [rows, files] = reader.getRows()[0] as [number, number];
      return { rows, files };
    },
    async close() {
      db.closeSync();
      instance.closeSync();
    },
  };
}

type AddRows = (files: FloorFile[], loadedAt: string, batch: number) => Promise<{ total: number; perFile: number[] }>;

/** Our loader's statement: the batch concatenated (file index per record) into one temporary CSV, one read_csv, lineage by index. */
async function readCsvLoader(db: DuckDBConnection, dir: string): Promise<AddRows> {
  const insert = await db.prepare(LOAD_CONCATENATED_SQL);
  return async (files, loadedAt, batch) => {
    const { csv, records } = concatenatedCsv(
      CANONICAL_HEADER.join(','),
      files.map((f) => ({ name: f.object, csv: f.canonical })),
    );
    const batchFile = path.join(dir, `batch-${batch}.csv`);
    await fs.writeFile(batchFile, csv);
    try {
      insert.bind(
        { path: batchFile, objects: listValue(files.map((f) => f.object)), generations: listValue(files.map((f) => f.generation)), loadedAt },
        { path: VARCHAR, objects: LIST(VARCHAR), generations: LIST(BIGINT), loadedAt: VARCHAR },
      );
      const total = Number((await insert.run()).rowsChanged);
      const expected = records.reduce((sum, n) => sum + n, 0);
      if (total !== expected) throw new Error(`read ${total} rows of ${files.length} files holding ${expected} records`);
      return { total, perFile: records };
    } finally {
      await fs.rm(batchFile, { force: true });
    }
  };
}

const YEAR = COLUMNS.findIndex((c) => c.name === 'year');
const MONTH = COLUMNS.findIndex((c) => c.name === 'month');
const DAY = COLUMNS.findIndex((c) => c.name === 'day');
/** Rows per data chunk: DuckDB's vector size. */
const CHUNK_ROWS = 2048;
const DAY_MS = 86_400_000;
type Cell = bigint | number | string | DuckDBTimestampValue | DuckDBDateValue | null;
/** Each canonical cell as the value of its column's DuckDB type (schema.ts's DUCKDB_TYPES), so the chunk's vectors are typed and nothing is cast. */
const CELL: Record<ColumnType, { type: DuckDBType; value(text: string): Cell }> = {
  integer: { type: BIGINT, value: (t) => BigInt(t) },
  number: { type: DOUBLE, value: Number },
  string: { type: VARCHAR, value: (t) => t },
  timestamp: { type: TIMESTAMP, value: (t) => new DuckDBTimestampValue(BigInt(Date.parse(`${t.replace(' ', 'T')}Z`)) * 1000n) },
};
const CHUNK_TYPES: DuckDBType[] = [...COLUMNS.map((c) => CELL[c.type].type), DATE, VARCHAR, BIGINT, BIGINT, TIMESTAMP];

/**
 * DuckDB's Appender, in the batch's transaction, fed data chunks of typed vectors (one call per
 * chunk, not per cell): each canonical file parsed back into fields by our reader, each cell
 * converted in JavaScript, the derived date and the lineage added per row.
 */
function appenderLoader(db: DuckDBConnection): AddRows {
  return async (files, loadedAt) => {
    const appender = await db.createAppender(TABLE);
    const loadedAtValue = new DuckDBTimestampValue(BigInt(Date.parse(loadedAt)) * 1000n);
    let columns: Cell[][] = CHUNK_TYPES.map(() => []);
    const flush = (): void => {
      if (columns[0]!.length === 0) return;
      const chunk = DuckDBDataChunk.create(CHUNK_TYPES, columns[0]!.length);
      chunk.setColumns(columns as DuckDBValue[][]);
      appender.appendDataChunk(chunk);
      columns = CHUNK_TYPES.map(() => []);
    };
    const perFile = files.map((file) => {
      let rows = 0;
      const reader = new CsvRecords(DEFAULT_LIMITS.maxRecordChars, {
        record: (fields, line) => {
          if (line === 1) return; // the canonical header
          for (let i = 0; i < COLUMNS.length; i++) {
            const cell = fields[i]!;
            columns[i]!.push(cell === '' ? null : CELL[COLUMNS[i]!.type].value(cell));
          }
          const n = COLUMNS.length;
          columns[n]!.push(new DuckDBDateValue(Date.UTC(Number(fields[YEAR]), Number(fields[MONTH]) - 1, Number(fields[DAY])) / DAY_MS));
          columns[n + 1]!.push(file.object);
          columns[n + 2]!.push(file.generation);
          columns[n + 3]!.push(BigInt(fields[n]!));
          columns[n + 4]!.push(loadedAtValue);
          rows += 1;
          if (columns[0]!.length === CHUNK_ROWS) flush();
        },
      });
      reader.write(file.canonical);
      reader.end();
      return rows;
    });
    flush();
    appender.closeSync();
    return { total: perFile.reduce((sum, n) => sum + n, 0), perFile };
  };
}

/**
 * The floor's load alone, in this process: `files` loaded by `loader` into a fresh database under
 * `dir`, in batches of the sizes in `batchSizes` (in turn, as the server saw them; repeated until
 * every file is loaded). CPU of this process (all threads, DuckDB's included) per file; every row
 * checked into `flights` once.
 */
export async function measureLoad(loader: LoaderName, files: FloorFile[], batchSizes: readonly number[], dir: string): Promise<number> {
  const work = await fs.mkdtemp(path.join(dir, `floor-load-${loader}-`));
  const db = await openFloorDb(work, loader);
  try {
    const expected = files.reduce((sum, f) => sum + lineCount(f.canonical) - 1, 0);
    const start = process.cpuUsage();
    for (let i = 0, b = 0; i < files.length; b++) {
      const size = Math.min(batchSizes[b % batchSizes.length]!, FLOOR_BATCH_FILES);
      await db.load(files.slice(i, (i += size)));
    }
    const { user, system } = process.cpuUsage(start);
    const counts = await db.counts();
    if (counts.rows !== expected || counts.files !== files.length) throw new Error(`${loader} loaded ${counts.rows} rows of ${counts.files} files, not ${expected} of ${files.length}`);
    return (user + system) / 1000 / files.length;
  } finally {
    await db.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Lines of a canonical CSV (each ends in LF; no field holds one in generated data, the count is checked against DuckDB's anyway). */
function lineCount(csv: Buffer): number {
  let n = 0;
  for (let i = csv.indexOf(10); i !== -1; i = csv.indexOf(10, i + 1)) n++;
  return n;
}
