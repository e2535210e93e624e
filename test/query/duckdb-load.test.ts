/** The DuckDB warehouse's batch load: exactly once per (object, generation), all or nothing per batch. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbWarehouse, MANIFEST, MANIFEST_LOOKUP_SQL } from '../../functions/adapters/duckdb/warehouse.js';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { csvHeader, csvLine } from '../../functions/query/formats.js';
import { generateRows } from './fixture.js';
import type { LoadItem } from '../../functions/core/ports.js';

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

/** A canonical CSV of `rows` flights, with its size as the loader passes it (`bytes: undefined`: a marker from before sizes were recorded). */
async function file(object: string, generation: string, rows: number, seed = rows, sized = true): Promise<LoadItem> {
  const uri = path.join(dir, `${object.replaceAll('/', '_')}.${generation}.csv`);
  const text = csvHeader(CANONICAL_HEADER) + generateRows(rows, seed).map((row) => csvLine(row, CANONICAL_HEADER)).join('');
  await fs.writeFile(uri, text);
  return { object, generation, uri, ...(sized ? { bytes: Buffer.byteLength(text) } : {}) };
}

/** Each file's rows as the table holds them, by lineage: what a user's query by `_source_object` would see. */
const byFile = async (): Promise<Record<string, number>> =>
  Object.fromEntries(
    (await warehouse.run('SELECT _source_object || \'#\' || _source_generation AS file, count(*)::INTEGER AS n FROM flights GROUP BY ALL')).rows.map((r) => [r.file, r.n]),
  );

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

  it('gives each file its own rows when a batch of small files, LF-ended as ingest writes them, takes several shared reads', async () => {
    // Sized near the small-file bound, so the batch's bytes, not its count, split it into reads.
    const near = 900 * 1024;
    const batch = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const item = await file(`in/${i}.csv`, String(i + 1), 3 + i);
        await fs.writeFile(item.uri, (await fs.readFile(item.uri, 'utf8')).replaceAll('\r\n', '\n'));
        return { ...item, bytes: near };
      }),
    );
    const outcomes = await warehouse.load(batch);
    expect(outcomes.map((o) => o.rows)).toEqual(batch.map((_, i) => 3 + i));
    expect(await byFile()).toEqual(Object.fromEntries(batch.map((f, i) => [`${f.object}#${f.generation}`, 3 + i])));
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

describe('DuckDbWarehouse.load of many small files in one read', () => {
  it('gives each file its own lineage and count, skips those loaded before, and loads large and unsized files alone in the same batch', async () => {
    const first = [await file('in/a.csv', '1', 30), await file('in/b.csv', '2', 7)];
    await warehouse.load(first);
    const batch = [
      await file('in/c.csv', '3', 12),
      first[1]!,
      await file('in/d.csv', '4', 0),
      await file('in/e.csv', '5', 40, 5, false),
      await file('in/f.csv', '6', 10_000),
      await file('in/a.csv', '7', 3),
      first[0]!,
    ];
    expect(batch[4]!.bytes).toBeGreaterThan(1024 * 1024);
    expect(await warehouse.load(batch)).toEqual([
      { object: 'in/c.csv', generation: '3', status: 'loaded', rows: 12 },
      { object: 'in/b.csv', generation: '2', status: 'duplicate', rows: 7 },
      { object: 'in/d.csv', generation: '4', status: 'loaded', rows: 0 },
      { object: 'in/e.csv', generation: '5', status: 'loaded', rows: 40 },
      { object: 'in/f.csv', generation: '6', status: 'loaded', rows: 10_000 },
      { object: 'in/a.csv', generation: '7', status: 'loaded', rows: 3 },
      { object: 'in/a.csv', generation: '1', status: 'duplicate', rows: 30 },
    ]);
    expect(await byFile()).toEqual({ 'in/a.csv#1': 30, 'in/b.csv#2': 7, 'in/c.csv#3': 12, 'in/e.csv#5': 40, 'in/f.csv#6': 10_000, 'in/a.csv#7': 3 });
    // The same rows as a file loaded alone: lineage per row, not per batch.
    const lines = await warehouse.run("SELECT min(_source_line)::INTEGER AS first, max(_source_line)::INTEGER AS last FROM flights WHERE _source_object = 'in/c.csv'");
    expect(lines.rows).toEqual([{ first: 2, last: 13 }]);
    expect((await warehouse.load(batch)).every((o) => o.status === 'duplicate')).toBe(true);
    expect(await total()).toBe(30 + 7 + 12 + 40 + 10_000 + 3);
  });

  it('reads more small files than one statement takes, all in the one transaction', async () => {
    const batch = await Promise.all(Array.from({ length: 300 }, (_, i) => file(`in/${i}.csv`, String(i + 1), 1 + (i % 5), i)));
    const outcomes = await warehouse.load(batch);
    expect(outcomes.map((o) => o.rows)).toEqual(batch.map((_, i) => 1 + (i % 5)));
    expect(Object.keys(await byFile())).toHaveLength(300);
    expect(await total()).toBe(batch.reduce((sum, _, i) => sum + 1 + (i % 5), 0));
    const again = await warehouse.load([...batch.slice(100), await file('in/new.csv', '1', 4)]);
    expect(again.filter((o) => o.status === 'duplicate').map((o) => o.rows)).toEqual(batch.slice(100).map((_, i) => 1 + ((i + 100) % 5)));
    expect(again.at(-1)).toEqual({ object: 'in/new.csv', generation: '1', status: 'loaded', rows: 4 });
  });

  it('loads nothing of a shared read with a bad file, which loaded alone (as the loader bisects) is named', async () => {
    const good = [await file('in/a.csv', '1', 10), await file('in/b.csv', '2', 20)];
    const text = `${csvHeader(CANONICAL_HEADER)}not,a,flight\n`;
    const bad = { object: 'in/bad.csv', generation: '3', uri: path.join(dir, 'bad.csv'), bytes: text.length };
    await fs.writeFile(bad.uri, text);
    await expect(warehouse.load([good[0]!, bad, good[1]!])).rejects.toThrow();
    await expect(warehouse.load([bad])).rejects.toThrow(/bad\.csv/);
    expect(await total()).toBe(0);
    expect((await warehouse.load(good)).map((o) => o.rows)).toEqual([10, 20]);
  });

  it('names the file at fault and its own line when a shared read fails, as its read alone does, never the concatenation', async () => {
    const db = path.join(dir, 'flights.duckdb');
    const onFile = new DuckDbWarehouse(db);
    await onFile.init();
    try {
      // Records spanning lines before the bad one: DuckDB counts records, so must the line it is mapped to.
      const before = await file('in/a.csv', '1', 5);
      await fs.writeFile(before.uri, (await fs.readFile(before.uri, 'utf8')).replace(/,([^,\r\n]*),(\d+)\r\n/, ',"two\nlines",$2\r\n'));
      before.bytes = (await fs.stat(before.uri)).size;
      const bad = await file('in/bad.csv', '2', 6);
      const lines = (await fs.readFile(bad.uri, 'utf8')).split('\r\n');
      lines[4] = lines[4]!.replace(/^\d+/, 'abcd');
      await fs.writeFile(bad.uri, lines.join('\r\n'));
      const after = await file('in/c.csv', '3', 3);
      const alone = await onFile.load([bad]).catch((e: Error) => e.message);
      expect(alone).toMatch(/CSV Error on Line: 5\nOriginal Line: \nabcd,/);
      const shared = await onFile.load([before, bad, after]).catch((e: Error) => e.message);
      expect(shared).toContain(bad.uri);
      expect(shared).toMatch(/CSV Error on Line: 5\nOriginal Line: \nabcd,/);
      expect(shared).not.toContain(`${db}.exports`);
      // A fault DuckDB gives no line for: the files read together, not the scratch file.
      const open = { object: 'in/lf.csv', generation: '4', uri: path.join(dir, 'lf.csv'), bytes: 0 };
      await fs.writeFile(open.uri, `${csvHeader(CANONICAL_HEADER)}x,y\n`);
      const unnamed = await onFile.load([before, open, after]).catch((e: Error) => e.message);
      expect(unnamed).toContain(`one of 3 files read together (${before.uri} … ${after.uri})`);
      expect(unnamed).not.toContain(`${db}.exports`);
      expect(await total()).toBe(0);
    } finally {
      await onFile.close();
    }
  });

  it('loads nothing of a shared read with a file that ends inside a quoted field, which would swallow the next file’s rows', async () => {
    const good = [await file('in/a.csv', '1', 10), await file('in/b.csv', '2', 20)];
    const text = `${csvHeader(CANONICAL_HEADER)}"open\r\n`;
    const bad = { object: 'in/open.csv', generation: '3', uri: path.join(dir, 'open.csv'), bytes: text.length };
    await fs.writeFile(bad.uri, text);
    await expect(warehouse.load([good[0]!, bad, good[1]!])).rejects.toThrow(/open\.csv/);
    expect(await total()).toBe(0);
  });

  it('reads a file without its last newline, and leaves no concatenated file behind, loaded or failed', async () => {
    const db = path.join(dir, 'flights.duckdb');
    const onFile = new DuckDbWarehouse(db);
    await onFile.init();
    try {
      const a = await file('in/a.csv', '1', 3);
      const b = await file('in/b.csv', '2', 4);
      const trimmed = (await fs.readFile(b.uri, 'utf8')).replace(/\r\n$/, '');
      await fs.writeFile(b.uri, trimmed);
      expect((await onFile.load([a, { ...b, bytes: trimmed.length }])).map((o) => o.rows)).toEqual([3, 4]);
      const missing = { object: 'in/gone.csv', generation: '3', uri: path.join(dir, 'gone.csv'), bytes: 10 };
      await expect(onFile.load([await file('in/c.csv', '4', 2), missing])).rejects.toThrow(/gone\.csv/);
      const bad = { object: 'in/bad.csv', generation: '5', uri: path.join(dir, 'bad.csv'), bytes: 20 };
      await fs.writeFile(bad.uri, `${csvHeader(CANONICAL_HEADER)}not,a,flight\r\n`);
      await expect(onFile.load([await file('in/d.csv', '6', 2), bad])).rejects.toThrow();
      expect(await fs.readdir(`${db}.exports`)).toEqual([]);
      expect((await onFile.run('SELECT count(*)::INTEGER AS n FROM flights')).rows).toEqual([{ n: 7 }]);
    } finally {
      await onFile.close();
    }
  });

  it('looks the manifest up through an index, so a batch costs the same however many files were loaded before', async () => {
    await warehouse.load(await Promise.all(Array.from({ length: 60 }, (_, i) => file(`in/${i}.csv`, String(i + 1), 1, i))));
    // As many objects as one lookup takes; DuckDB picks the index when the statement runs, so only EXPLAIN ANALYZE shows it.
    const objects = Array.from({ length: 50 }, (_, i) => `in/${i}.csv`);
    const plan = await warehouse.run(`EXPLAIN ANALYZE ${MANIFEST_LOOKUP_SQL}`, [{ name: 'objects', type: 'string', value: objects, array: true }]);
    expect(JSON.stringify(plan.rows)).toMatch(/Type: Index Scan/);
  });
});

describe('DuckDbWarehouse on a database file', () => {
  /** An object name as long as the bucket's (DuckDB keeps strings of up to 12 bytes inline, and those did not abort). */
  const objectName = (i: string): string => `'landing/2026/11/30/' || md5(${i}::VARCHAR) || '.csv'`;

  it('checkpoints and reopens a manifest of 200k loaded files, and still knows each of them', async () => {
    const db = path.join(dir, 'flights.duckdb');
    const onFile = new DuckDbWarehouse(db);
    await onFile.init();
    // 200k files' manifest rows in one statement: loading them one by one would take minutes. DuckDB 1.5.0
    // aborted the process (free(): corrupted unsorted chunks) checkpointing a primary key this size on close.
    await onFile.run(`INSERT INTO ${MANIFEST} SELECT ${objectName('i')}, i, 1, now() FROM range(200000) t(i)`);
    await onFile.close();
    const reopened = new DuckDbWarehouse(db);
    await reopened.init();
    try {
      const known = await file(String((await reopened.run(`SELECT ${objectName('199999')} AS o`)).rows[0]!.o), '199999', 1);
      expect(await reopened.load([known, await file('landing/new.csv', '1', 4)])).toEqual([
        { object: known.object, generation: '199999', status: 'duplicate', rows: 1 },
        { object: 'landing/new.csv', generation: '1', status: 'loaded', rows: 4 },
      ]);
    } finally {
      await reopened.close();
    }
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
