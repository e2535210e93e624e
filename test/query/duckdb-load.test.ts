/** The DuckDB warehouse's batch load: exactly once per (object, generation), all or nothing per batch. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbWarehouse } from '../../functions/adapters/duckdb/warehouse.js';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { csvHeader, csvLine } from '../../functions/query/formats.js';
import { generateRows } from './fixture.js';

let dir: string;
let warehouse: DuckDbWarehouse;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'duckdb-load-'));
  warehouse = new DuckDbWarehouse(':memory:');
  await warehouse.init();
});
afterEach(async () => {
  await warehouse.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function file(object: string, generation: string, rows: number, seed = rows): Promise<{ object: string; generation: string; uri: string }> {
  const uri = path.join(dir, `${object.replaceAll('/', '_')}.${generation}.csv`);
  await fs.writeFile(uri, csvHeader(CANONICAL_HEADER) + generateRows(rows, seed).map((row) => csvLine(row, CANONICAL_HEADER)).join(''));
  return { object, generation, uri };
}

const total = async (): Promise<number> => warehouse.count({ select: [], filters: [], order: [], limit: 1 });

describe('DuckDbWarehouse.load', () => {
  it('loads a batch with each file’s row count, and a repeated batch as duplicates with the first counts', async () => {
    const batch = [await file('in/a.csv', '11', 30), await file('in/b.csv', '12', 7), await file('in/a.csv', '9007199254740993', 5)];
    expect(await warehouse.load(batch)).toEqual([
      { object: 'in/a.csv', generation: '11', status: 'loaded', rows: 30 },
      { object: 'in/b.csv', generation: '12', status: 'loaded', rows: 7 },
      { object: 'in/a.csv', generation: '9007199254740993', status: 'loaded', rows: 5 },
    ]);
    const again = await warehouse.load([batch[2]!, await file('in/c.csv', '13', 4), batch[0]!]);
    expect(again).toEqual([
      { object: 'in/a.csv', generation: '9007199254740993', status: 'duplicate', rows: 5 },
      { object: 'in/c.csv', generation: '13', status: 'loaded', rows: 4 },
      { object: 'in/a.csv', generation: '11', status: 'duplicate', rows: 30 },
    ]);
    expect(await total()).toBe(30 + 7 + 5 + 4);
  });

  it('loads nothing of a batch with a bad file, and all of it once the file is gone', async () => {
    const good = [await file('in/a.csv', '1', 10), await file('in/b.csv', '2', 20)];
    const bad = { object: 'in/bad.csv', generation: '3', uri: path.join(dir, 'bad.csv') };
    await fs.writeFile(bad.uri, `${csvHeader(CANONICAL_HEADER)}not,a,flight\n`);
    await expect(warehouse.load([good[0]!, bad, good[1]!])).rejects.toThrow();
    expect(await total()).toBe(0);
    expect((await warehouse.load(good)).map((o) => o.status)).toEqual(['loaded', 'loaded']);
    expect(await total()).toBe(30);
  });
});

describe('DuckDbWarehouse threads', () => {
  it('runs DuckDB on the configured threads, and loads and counts the same on one', async () => {
    const single = new DuckDbWarehouse(':memory:', 1, 1);
    await single.init();
    try {
      expect((await single.run("SELECT current_setting('threads')::INTEGER AS threads")).rows).toEqual([{ threads: 1 }]);
      expect(await single.load([await file('in/a.csv', '1', 25)])).toEqual([{ object: 'in/a.csv', generation: '1', status: 'loaded', rows: 25 }]);
      expect(await single.count({ select: [], filters: [], order: [], limit: 1 })).toBe(25);
    } finally {
      await single.close();
    }
  });
});

describe('DuckDbWarehouse reads', () => {
  it('answers more query shapes than a reader keeps prepared, each bound anew, and a kept shape sees rows loaded after it was prepared', async () => {
    const one = new DuckDbWarehouse(':memory:', 1);
    await one.init();
    try {
      await one.load([await file('in/a.csv', '1', 30)]);
      const rows = generateRows(30, 30);
      const shapes = Array.from({ length: 40 }, (_, k) => `SELECT count(*) + ${k} AS n FROM flights WHERE month <= $month`);
      const count = async (sql: string, month: number): Promise<unknown> =>
        (await one.run(sql, [{ name: 'month', type: 'integer', value: month, array: false }], new Set(['n']))).rows[0]!.n;
      const counts = async (month: number): Promise<unknown[]> => {
        const out: unknown[] = [];
        for (const sql of shapes) out.push(await count(sql, month));
        return out;
      };
      const upTo = (month: number): number => rows.filter((r) => (r.month as number) <= month).length;
      expect(await counts(6)).toEqual(shapes.map((_, k) => upTo(6) + k));
      expect(await counts(12)).toEqual(shapes.map((_, k) => 30 + k));
      await one.load([await file('in/b.csv', '2', 7)]);
      // The last shape run is still prepared: it reads the new rows too.
      expect(await count(shapes[39]!, 12)).toBe(37 + 39);
      expect(await counts(12)).toEqual(shapes.map((_, k) => 37 + k));
    } finally {
      await one.close();
    }
  });
});
