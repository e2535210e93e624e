/** Deterministic flights for tests that need a real warehouse: loaded through the canonical CSV like ingest does. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { DuckDbWarehouse } from '../../functions/adapters/duckdb/warehouse.js';
import { csvHeader, csvLine } from '../../functions/query/formats.js';
import { random } from '../support/generate-flights.js';

const CARRIERS = ['UA', 'AA', 'B6', 'DL', '9E'];
const AIRLINES = ['United Air Lines Inc.', 'American Airlines Inc.', 'JetBlue Airways', 'Foo, Inc.', 'Say "Hi" Air'];
const AIRPORTS = ['JFK', 'LGA', 'EWR'];
const DESTS = ['LAX', 'SFO', 'ORD', 'ATL', 'MIA', 'BOS'];

const pad = (n: number) => String(n).padStart(2, '0');

export function generateRows(count: number, seed: number): Record<string, unknown>[] {
  const r = random(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const maybe = <T>(value: T, nullShare = 0.1): T | null => (r() < nullShare ? null : value);
  return Array.from({ length: count }, (_, i) => {
    const month = 1 + Math.floor(r() * 12);
    const day = 1 + Math.floor(r() * 28);
    const hour = 5 + Math.floor(r() * 18);
    const minute = Math.floor(r() * 60);
    const c = Math.floor(r() * CARRIERS.length);
    // Few distinct delays, so sorts have many ties for the tiebreaker to settle.
    const delay = Math.round((r() * 120 - 20) / 2.5) * 2.5;
    return {
      id: maybe(i + 1),
      year: 2013,
      month,
      day,
      dep_time: maybe(hour * 100 + minute),
      sched_dep_time: hour * 100 + minute,
      dep_delay: maybe(delay),
      arr_time: maybe(((hour + 3) % 24) * 100 + minute),
      sched_arr_time: ((hour + 3) % 24) * 100 + minute,
      arr_delay: maybe(Math.round(r() * 140 - 40)),
      carrier: CARRIERS[c],
      flight: 1 + Math.floor(r() * 2000),
      tailnum: maybe(`N${Math.floor(r() * 400)}${pick(['UA', 'AA', 'JB', ''])}`),
      origin: pick(AIRPORTS),
      dest: pick(DESTS),
      air_time: maybe(30 + Math.floor(r() * 300)),
      distance: 100 + Math.floor(r() * 25) * 100,
      hour,
      minute,
      time_hour: `2013-${pad(month)}-${pad(day)} ${pad(hour)}:00:00`,
      name: maybe(AIRLINES[c]),
      _source_line: i + 2,
    };
  });
}

export interface FixtureFile {
  object: string;
  generation: string;
  rows: number;
  seed: number;
}

/** The base data: 2000 rows over three objects, one with a generation beyond 2^53. */
export const BASE_FILES: FixtureFile[] = [
  { object: 'uploads/a.csv', generation: '1700000000000001', rows: 800, seed: 1 },
  { object: 'uploads/b.csv', generation: '1712345678901234567', rows: 700, seed: 2 },
  { object: 'uploads/a.csv', generation: '1700000000000009', rows: 500, seed: 3 },
];

export async function loadFiles(warehouse: DuckDbWarehouse, dir: string, files: FixtureFile[]): Promise<void> {
  const items = [];
  for (const f of files) {
    const file = path.join(dir, `${f.object.replaceAll('/', '_')}.${f.generation}.csv`);
    const rows = generateRows(f.rows, f.seed);
    await fs.writeFile(file, csvHeader(CANONICAL_HEADER) + rows.map((row) => csvLine(row, CANONICAL_HEADER)).join(''));
    items.push({ object: f.object, generation: f.generation, uri: file });
  }
  await warehouse.load(items);
}

export async function fixtureWarehouse(): Promise<{ warehouse: DuckDbWarehouse; dir: string; close(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flights-query-'));
  const warehouse = new DuckDbWarehouse(':memory:');
  await warehouse.init();
  await loadFiles(warehouse, dir, BASE_FILES);
  return {
    warehouse,
    dir,
    close: async () => {
      await warehouse.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
