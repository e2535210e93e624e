import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellKind, cellText, type CellKind } from '../../functions/core/cell-text.js';
import { duckDbDialect } from '../../functions/core/sql.js';

describe('cellText, the one cell format', () => {
  it('writes numbers as JavaScript does: no .0 on integral values, no signed zero', () => {
    expect([-2, -2.5, 0.1, -0, 1400, 2 ** 53].map((n) => cellText('number', n))).toEqual(['-2', '-2.5', '0.1', '0', '1400', '9007199254740992']);
  });

  it('writes local times as uploaded, with only the fraction digits they need, whichever form the warehouse returned', () => {
    for (const raw of ['2013-01-01 05:00:00', '2013-01-01T05:00:00', '2013-01-01T05:00:00.000000']) expect(cellText('timestamp', raw)).toBe('2013-01-01 05:00:00');
    expect(cellText('timestamp', '2013-01-01T05:00:00.500000')).toBe('2013-01-01 05:00:00.5');
  });

  it('writes instants as ISO 8601 in UTC, with Z', () => {
    expect(cellKind('_loaded_at', 'timestamp')).toBe('instant');
    expect(cellKind('time_hour', 'timestamp')).toBe('timestamp');
    expect(cellText('instant', '2026-11-30 13:00:00.12')).toBe('2026-11-30T13:00:00.12Z');
    expect(cellText('instant', '2026-11-30T13:00:00')).toBe('2026-11-30T13:00:00Z');
  });

  it('writes NULL as no text at all (an empty cell)', () => {
    for (const kind of ['integer', 'number', 'string', 'date', 'timestamp', 'instant'] as const) expect(cellText(kind, null)).toBeNull();
  });
});

/** Deterministic values, so a failure names the same value on every run. */
function* lcg(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    yield x / 2 ** 31;
  }
}

function numbers(): number[] {
  const r = lcg(42);
  const next = () => r.next().value as number;
  const out = [0, -0, -2, 2, -2.5, 0.1, 0.0001, -0.0001, 1400, 12345.678, 1e15, 2 ** 53 - 1, -(2 ** 53 - 1), 123456789012345, 0.123456789012345];
  for (let i = 0; i < 300; i++) {
    const sign = next() < 0.3 ? -1 : 1;
    // Minutes and miles as files carry them: integers, and decimals of up to 4 places.
    out.push((sign * Math.round(next() * 1e7)) / 10 ** Math.floor(next() * 5));
    // Full-precision doubles (DuckDB prints every one in its shortest form).
    out.push(sign * next() * 10 ** Math.floor(next() * 12));
  }
  return out;
}

describe('the DuckDB export SQL writes every cell as cellText does', () => {
  let db: DuckDBInstance;
  let c: DuckDBConnection;
  beforeAll(async () => {
    db = await DuckDBInstance.create(':memory:');
    c = await db.connect();
  });
  afterAll(() => {
    c?.closeSync();
    db?.closeSync();
  });

  /** Each value as /getdata reads it (the column itself) beside the export's text for it. */
  async function compare(kind: CellKind, sqlType: string, literals: string[]): Promise<void> {
    const values = literals.map((l) => `(CAST(${l} AS ${sqlType}))`).join(', ');
    const reader = await c.runAndReadAll(`SELECT x, ${duckDbDialect().cellText('x', kind)} AS text FROM (VALUES ${values}) AS t(x)`);
    const rows = reader.getRowObjectsJson();
    expect(rows).toHaveLength(literals.length);
    for (const row of rows) expect({ x: row.x, text: row.text }).toEqual({ x: row.x, text: cellText(kind, row.x) });
  }

  it('numbers: negative, fractional, integral, large, and NULL', async () => {
    await compare('number', 'DOUBLE', [...numbers().map((n) => (Object.is(n, -0) ? "'-0.0'" : `'${n}'`)), 'NULL']);
  });

  it('integers, dates, local times, instants and strings', async () => {
    await compare('integer', 'BIGINT', ['0', '-5', '2400', '9007199254740993', 'NULL']);
    await compare('date', 'DATE', ["'2013-01-02'", "'1999-12-31'", 'NULL']);
    const clocks = ["'2013-01-01 05:00:00'", "'2013-01-01 05:00:00.5'", "'2013-12-31 23:59:59.123456'", "'2013-06-02 08:00:00.0001'", 'NULL'];
    await compare('timestamp', 'TIMESTAMP', clocks);
    await compare('instant', 'TIMESTAMP', clocks);
    await compare('string', 'VARCHAR', ["'United Air Lines Inc.'", `'Foo, "Bar"'`, 'NULL']);
  });
});
