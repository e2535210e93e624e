/**
 * DuckDB's CPU per small file, by batch size, before and after a change to the warehouse's load:
 * `BEFORE_TREE=<checkout> npx tsx bench/duckdb-batch.ts`. In this process, no server: each side's
 * `DuckDbWarehouse` (imported from its checkout) loads the same `DUCKDB_BATCH_FILES` 100-row
 * canonical files, `DUCKDB_BATCH_SIZES` per `load` call, on a fresh database file under
 * `BENCH_DIR` (default: the OS temp dir); sides alternate, `DUCKDB_BATCH_RUNS` pairs. CPU is this
 * process's (all threads), so only DuckDB and the warehouse's own JavaScript are in it.
 * `DUCKDB_BATCH_MANIFEST` rows are put in the manifest first (then the database is in memory:
 * DuckDB 1.5.0 aborts when it checkpoints a manifest of 130k rows, see docs/benchmarks.md).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CANONICAL_HEADER } from '../functions/core/schema.js';
import { csvHeader, csvLine } from '../functions/query/formats.js';
import type { DuckDbWarehouse } from '../functions/adapters/duckdb/warehouse.js';
import { generateRows } from '../test/query/fixture.js';
import { envInt, median } from './support.js';

const before = process.env.BEFORE_TREE;
if (!before) throw new Error('BEFORE_TREE must name a checkout to compare with');
type Side = 'before' | 'after';
const roots: Record<Side, string> = { before: path.resolve(before), after: path.resolve(process.env.AFTER_TREE ?? '.') };
const warehouses = Object.fromEntries(
  await Promise.all(Object.entries(roots).map(async ([side, root]) => [side, (await import(path.join(root, 'functions/adapters/duckdb/warehouse.ts'))).DuckDbWarehouse])),
) as Record<Side, typeof DuckDbWarehouse>;
const fileCount = envInt('DUCKDB_BATCH_FILES', 960);
const runs = envInt('DUCKDB_BATCH_RUNS', 2);
const manifestRows = process.env.DUCKDB_BATCH_MANIFEST ? envInt('DUCKDB_BATCH_MANIFEST', 1) : 0;
const sizes = (process.env.DUCKDB_BATCH_SIZES ?? '1,4,16,200').split(',').map(Number);

const work = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-duckdb-batch-'));
const files: { uri: string; bytes: number }[] = [];
for (let i = 0; i < fileCount; i++) {
  const uri = path.join(work, `${i}.csv`);
  const text = csvHeader(CANONICAL_HEADER) + generateRows(100, i + 1).map((row) => csvLine(row, CANONICAL_HEADER)).join('');
  await fs.writeFile(uri, text);
  files.push({ uri, bytes: Buffer.byteLength(text) });
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** CPU ms per file for one side loading every file in batches of `size`. */
async function measure(side: Side, size: number, run: number): Promise<number> {
  const file = path.join(work, `${side}-${size}-${run}.duckdb`);
  const warehouse = new warehouses[side](manifestRows ? ':memory:' : file, 1);
  await warehouse.init();
  try {
    if (manifestRows) await warehouse.run(`INSERT INTO _loads SELECT 'incoming/2026/11/30/' || md5(i::VARCHAR) || '.csv', i, 100, now() FROM range(${manifestRows}) t(i)`);
    const start = cpuMs();
    for (let i = 0; i < files.length; i += size) {
      await warehouse.load(files.slice(i, i + size).map((f, j) => ({ object: `incoming/bench/${i + j}.csv`, generation: String(1 + i + j), ...f })));
    }
    const perFile = (cpuMs() - start) / files.length;
    const { rows } = await warehouse.run('SELECT count(*)::INTEGER AS n FROM flights');
    if (rows[0]?.n !== files.length * 100) throw new Error(`${side} loaded ${String(rows[0]?.n)} rows, not ${files.length * 100}`);
    return perFile;
  } finally {
    await warehouse.close();
    await fs.rm(file, { force: true });
    await fs.rm(`${file}.wal`, { force: true });
  }
}

const loads = [os.loadavg()[0]!];
console.log(`DuckDbWarehouse.load, ${fileCount} files of 100 rows, ${runs} interleaved pairs, manifest of ${manifestRows} rows first; before: ${roots.before}, after: ${roots.after}`);
console.log('\n| files per load | before CPU ms/file (runs) | after CPU ms/file (runs) | after ÷ before (medians) |\n|--:|--:|--:|--:|');
for (const size of sizes) {
  const perFile: Record<Side, number[]> = { before: [], after: [] };
  for (let run = 0; run < runs; run++) {
    for (const side of (run % 2 ? ['after', 'before'] : ['before', 'after']) as Side[]) perFile[side].push(await measure(side, size, run));
  }
  loads.push(os.loadavg()[0]!);
  const list = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' / ');
  console.log(`| ${size} | ${list(perFile.before)} | ${list(perFile.after)} | ${(median(perFile.after) / median(perFile.before)).toFixed(2)}× |`);
}
console.log(`\n1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
await fs.rm(work, { recursive: true, force: true });
