/**
 * The pipeline floor's loaders (bench/pipeline-floor.ts) do the same job as ours: the table they
 * leave holds exactly the rows, values and lineage DuckDbWarehouse.load leaves for the same
 * validated files, or the floor measured in bench/ingest.ts is the floor of some other job.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../../functions/adapters/duckdb/warehouse.js';
import { checkWhole, DEFAULT_LIMITS } from '../../functions/ingest/validator.js';
import { LOADER_NAMES, openFloorDb, type FloorFile } from '../../bench/pipeline-floor.js';
import { flightsCsv } from '../support/generate-flights.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pipeline-floor-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Generated uploads (cancelled flights' empty cells, missing tail numbers) as the validator leaves them; one with a quoted name holding a comma. */
function validated(count: number): FloorFile[] {
  return Array.from({ length: count }, (_, i) => {
    let csv = flightsCsv(20 + i, 500 + i);
    if (i === 1) csv = csv.replace(/,([^,\n]*)\n$/, ',"Quoted, Inc."\n');
    return { object: `incoming/${i}.csv`, generation: BigInt(1000 + i), canonical: Buffer.concat(checkWhole(Buffer.from(csv), DEFAULT_LIMITS).canonical) };
  });
}

/** Ours: the files written out and loaded by DuckDbWarehouse in one batch. */
async function loadOurs(files: FloorFile[], file: string): Promise<void> {
  const warehouse = new DuckDbWarehouse(file, 1);
  await warehouse.init();
  const items = await Promise.all(
    files.map(async (f, i) => {
      const uri = path.join(dir, `ours-${i}.csv`);
      await fs.writeFile(uri, f.canonical);
      return { object: f.object, generation: String(f.generation), uri, bytes: f.canonical.length };
    }),
  );
  await warehouse.load(items);
  await warehouse.close();
}

/** Rows of `a.flights` not in `b.flights` (as a multiset, the load time left out), both ways. */
async function difference(a: string, b: string): Promise<[number, number]> {
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  await db.run(`ATTACH '${a}' AS a (READ_ONLY)`);
  await db.run(`ATTACH '${b}' AS b (READ_ONLY)`);
  const count = async (x: string, y: string): Promise<number> =>
    Number((await db.runAndReadAll(`SELECT count(*) FROM (SELECT * EXCLUDE (_loaded_at) FROM ${x}.flights EXCEPT ALL SELECT * EXCLUDE (_loaded_at) FROM ${y}.flights)`)).getRows()[0]![0]);
  const result: [number, number] = [await count('a', 'b'), await count('b', 'a')];
  db.closeSync();
  instance.closeSync();
  return result;
}

describe('the pipeline floor loaders', () => {
  it.each(LOADER_NAMES)('%s leaves the table our loader leaves, every row once, and refuses the same files twice', async (loader) => {
    const files = validated(5);
    const rows = files.reduce((n, _f, i) => n + 20 + i, 0);
    const floorDir = path.join(dir, loader);
    await fs.mkdir(floorDir);
    const floor = await openFloorDb(floorDir, loader);
    expect((await floor.load(files.slice(0, 2))) + (await floor.load(files.slice(2)))).toBe(rows);
    await expect(floor.load(files.slice(3))).rejects.toThrow(/constraint/i);
    expect(await floor.counts()).toEqual({ rows, files: files.length });
    await floor.close();

    const ours = path.join(dir, 'ours.duckdb');
    await loadOurs(files, ours);
    expect(await difference(path.join(floorDir, 'floor.duckdb'), ours)).toEqual([0, 0]);
  });
});
