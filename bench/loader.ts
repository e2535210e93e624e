/**
 * Loader benchmark (issue 17): how long a stored 1 M-row file takes to become
 * queryable, against DuckDB's own `read_csv` of the same file into a table.
 *
 *   npx tsx bench/loader.ts
 *
 * Each run, interleaved so the three sides share the machine's load:
 * - baseline: `CREATE TABLE AS SELECT * FROM read_csv(…)` + CHECKPOINT into a
 *   fresh database file, in this process;
 * - pipeline: POST /upload to the real server (a child process), then from
 *   the 201 until the ledger says loaded. The end is the record's `updatedAt`,
 *   written right after the load's COMMIT, so the status is polled slowly
 *   (a fast poll would charge the server's CPU for the benchmark's own requests);
 * - warehouse: `DuckDbWarehouse.load` of the same stored (canonical) object
 *   into a fresh database, then close (checkpoint): the loader's DuckDB work
 *   without the pipeline around it.
 * CPU time (user + system, all threads) is reported next to wall time: on a
 * shared machine the wall time mostly says how much of the CPUs a run got.
 *
 * LOADER_BENCH_ROWS (default 1000000) and LOADER_BENCH_RUNS (default 3).
 * Figures go to the console and the "Loader" section of docs/benchmarks.md.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDbWarehouse } from '../functions/adapters/duckdb/warehouse.js';
import { FsObjectStore } from '../functions/adapters/local/fs-store.js';
import { loadConfig } from '../functions/core/config.js';
import { ROOT, envInt, machine, median, since, startServer, tempDir, uploadFile, waitForLoad, writeFlightsFile, writeGenerated } from './support.js';

const ROWS = envInt('LOADER_BENCH_ROWS', 1_000_000);
const RUNS = envInt('LOADER_BENCH_RUNS', 3);
/** Issue 17: the loader at ≥ 0.8× the speed of DuckDB's own read_csv into a table. */
const MIN_RATIO = 0.8;
/** Slow enough to cost the server next to nothing; the end time comes from the record, not from the poll. */
const POLL_MS = 500;

/** CPU time of a process so far (user + system, all threads), in ms, from /proc (Linux; USER_HZ = 100). */
function processCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** This process's CPU time so far, in ms. */
const ownCpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

interface Timing {
  wallMs: number;
  cpuMs: number;
}

async function timed(work: () => Promise<unknown>): Promise<Timing> {
  const cpu = ownCpuMs();
  const t = performance.now();
  await work();
  return { wallMs: since(t), cpuMs: ownCpuMs() - cpu };
}

async function fresh(file: string): Promise<string> {
  for (const f of [file, `${file}.wal`]) await fsp.rm(f, { force: true });
  return file;
}

async function baseline(csv: string, dbFile: string): Promise<Timing> {
  const db = await DuckDBInstance.create(await fresh(dbFile));
  const conn = await db.connect();
  try {
    return await timed(async () => {
      await conn.run('CREATE TABLE flights AS SELECT * FROM read_csv($path, header = true)', { path: csv });
      await conn.run('CHECKPOINT');
    });
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

interface PipelineRun extends Timing {
  uploadMs: number;
  /** Where the stored object is, for the warehouse-only side. */
  object: { name: string; generation: string };
}

async function pipeline(csv: string, dataDir: string, logFile: string): Promise<PipelineRun> {
  await fsp.rm(dataDir, { recursive: true, force: true });
  const server = await startServer({ dataDir, logFile, env: { AUTH: 'off', LOG_LEVEL: 'warn' } });
  try {
    const t = performance.now();
    const upload = await uploadFile(server.url, csv);
    const uploadMs = since(t);
    const storedAt = Date.now();
    const cpu = processCpuMs(server.pid);
    const loaded = await waitForLoad(server.url, upload.uploadId, 600_000, POLL_MS);
    const cpuMs = processCpuMs(server.pid) - cpu;
    if (loaded.loadedRows !== ROWS) throw new Error(`loaded ${loaded.loadedRows} rows, expected ${ROWS}`);
    return { uploadMs, wallMs: Date.parse(loaded.updatedAt) - storedAt, cpuMs, object: { name: loaded.object, generation: loaded.generation! } };
  } finally {
    await server.stop();
  }
}

async function warehouseOnly(uri: string, dbFile: string, object: PipelineRun['object']): Promise<Timing> {
  const warehouse = new DuckDbWarehouse(await fresh(dbFile));
  await warehouse.init();
  try {
    return await timed(async () => {
      const [outcome] = await warehouse.load([{ object: object.name, generation: object.generation, uri }]);
      if (outcome?.rows !== ROWS) throw new Error(`warehouse loaded ${outcome?.rows} rows, expected ${ROWS}`);
      await warehouse.close();
    });
  } finally {
    await warehouse.close();
  }
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const dir = await tempDir('loader-bench-');
  const csv = path.join(dir, 'flights.csv');
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const dbFile = path.join(dir, 'side.duckdb');
  const host = machine();
  const startedAt = new Date();
  try {
    const bytes = await writeFlightsFile(csv, ROWS);
    console.log(`loader bench: ${ROWS} rows (${(bytes / 1e6).toFixed(1)} MB), ${RUNS} runs, ${host.nproc} cpus; work in ${dir}`);
    const loads: number[] = [];
    const runs: { base: Timing; pipe: PipelineRun; warehouse: Timing }[] = [];
    for (let i = 0; i < RUNS; i++) {
      loads.push(os.loadavg()[0]!);
      const base = await baseline(csv, dbFile);
      const pipe = await pipeline(csv, dataDir, logFile);
      const store = new FsObjectStore(path.join(dataDir, 'buckets'), loadConfig({ ...process.env, DATA_DIR: dataDir }).bucket);
      const warehouse = await warehouseOnly(store.uri(pipe.object.name, pipe.object.generation), dbFile, pipe.object);
      runs.push({ base, pipe, warehouse });
      loads.push(os.loadavg()[0]!);
      console.log(
        `run ${i + 1}: read_csv ${s(base.wallMs)} (cpu ${s(base.cpuMs)}) | stored → queryable ${s(pipe.wallMs)} (server cpu ${s(pipe.cpuMs)}) ` +
          `| DuckDbWarehouse.load ${s(warehouse.wallMs)} (cpu ${s(warehouse.cpuMs)}) | ratio ${(base.wallMs / pipe.wallMs).toFixed(2)}×`,
      );
    }
    const ratios = runs.map((r) => r.base.wallMs / r.pipe.wallMs);
    const cpuRatios = runs.map((r) => r.base.cpuMs / r.pipe.cpuMs);
    const whRatios = runs.map((r) => r.base.wallMs / r.warehouse.wallMs);
    const whCpuRatios = runs.map((r) => r.base.cpuMs / r.warehouse.cpuMs);
    const med = (pick: (r: (typeof runs)[number]) => number): string => s(median(runs.map(pick)));
    const range = (values: number[]): string => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
    const generated = [
      `Run ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${ROWS.toLocaleString('en')} rows (${(bytes / 1e6).toFixed(1)} MB), ${RUNS} interleaved runs (medians; ratios per run), ` +
        `${host.nproc} × ${host.cpu}, Node ${host.node}, OS temp dir; 1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
      '',
      '| side | wall | CPU | read_csv ÷ side, wall (per run) | read_csv ÷ side, CPU (per run) |',
      '|---|--:|--:|--:|--:|',
      `| baseline: DuckDB \`CREATE TABLE AS SELECT * FROM read_csv(…)\` + CHECKPOINT, fresh file | ${med((r) => r.base.wallMs)} | ${med((r) => r.base.cpuMs)} | – | – |`,
      `| stored → queryable: 201 until the ledger says loaded (server process CPU) | ${med((r) => r.pipe.wallMs)} | ${med((r) => r.pipe.cpuMs)} | ${median(ratios).toFixed(2)}× (${range(ratios)}) | ${median(cpuRatios).toFixed(2)}× (${range(cpuRatios)}) |`,
      `| \`DuckDbWarehouse.load\` of the stored object alone, + close | ${med((r) => r.warehouse.wallMs)} | ${med((r) => r.warehouse.cpuMs)} | ${median(whRatios).toFixed(2)}× (${range(whRatios)}) | ${median(whCpuRatios).toFixed(2)}× (${range(whCpuRatios)}) |`,
      '',
      `Loader ÷ read_csv (stored → queryable, median of runs): ${median(ratios).toFixed(2)}×; target ≥ ${MIN_RATIO}× (issue 17): ${median(ratios) >= MIN_RATIO ? 'met' : '**not met**'}. Upload until 201: ${med((r) => r.pipe.uploadMs)}.`,
    ].join('\n');
    console.log(`\n${generated}\n`);
    await writeGenerated(path.join(ROOT, 'docs', 'benchmarks.md'), 'Loader', 'loader-bench', generated);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

await main();
