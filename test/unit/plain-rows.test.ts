/**
 * The byte path's verdicts: a row it takes is one canonicalCell keeps as it
 * came, cell for cell; the common rows are taken (else every upload would
 * quietly take the slow path); anything in doubt is left to canonicalCell.
 */
import { describe, expect, it } from 'vitest';
import { columnByName, COLUMNS } from '../../functions/core/schema.js';
import { ByteOutput } from '../../functions/ingest/byte-output.js';
import { canonicalCell } from '../../functions/ingest/cells.js';
import { mapHeader, type HeaderMap } from '../../functions/ingest/header.js';
import { PlainRows } from '../../functions/ingest/plain-rows.js';
import { flightLines, KAGGLE_HEADER } from '../support/generate-flights.js';

const names = KAGGLE_HEADER.split(',');
function headerMap(columns: string[]): HeaderMap {
  const mapped = mapHeader(columns);
  if (!mapped.ok) throw new Error(`${columns.join(',')} does not map`);
  return mapped.map;
}
const header = headerMap(names);
const row = [...flightLines(1)][0]!.split(',');

/** Whether the byte path takes the row with `raw` in `column`, its line ending in `eol`. */
function takes(column: string, raw: string, eol = '\n'): boolean {
  const line = Buffer.from(names.map((n, i) => (n === column ? raw : row[i])).join(',') + eol);
  return new PlainRows(header, 1 << 16).check(line, 0, line.length - eol.length);
}

/** Per column, raw cells and whether the byte path takes them. */
const CASES: Record<string, [string, boolean][]> = {
  flight: [['517', true], ['0', true], ['999999999999999', true], ['0517', false], ['+5', false], ['517.0', false], ['-5', false], ['', false], ['NA', false], [' 5', false], ['9999999999999999', false], ['5x', false]],
  dep_time: [['', true], ['2400', true], ['2401', false], ['NA', false]],
  month: [['1', true], ['12', true], ['13', false], ['0', false], ['012', false]],
  day: [['31', true], ['32', false], ['1', true]],
  dep_delay: [['-2', true], ['0', true], ['17', true], ['', true], ['-0', false], ['-05', false], ['2.5', false], ['-', false], ['1e3', false], ['NA', false]],
  distance: [['0', true], ['-1', false]],
  time_hour: [['2013-01-01 05:00:00', true], ['2012-02-29 23:59:59', true], ['2013-02-29 05:00:00', false], ['2013-01-01T05:00', false], ['2013-01-01 24:00:00', false], ['2013-01-01 05:00:0', false], ['2013-01-01 05:00:000', false], ['', false]],
  carrier: [['AA', true], ['9E', true], ['A', false], ['AAA', false], ['aa', false], ['NA', false], ['', false]],
  origin: [['JFK', true], ['JF', false]],
  tailnum: [['N12345', true], ['', true], ['NA', false], ['N'.repeat(16), true], ['N'.repeat(17), false], ['N\tX', false]],
  name: [['Delta Air Lines Inc.', true], ['', true], ['é', false], ['x\u0001', false], ['x'.repeat(200), true], ['x'.repeat(201), false]],
};

describe('PlainRows', () => {
  it('takes a row only when canonicalCell keeps every cell as it came, and takes the common ones', () => {
    for (const [column, cases] of Object.entries(CASES)) {
      for (const [raw, taken] of cases) {
        expect(takes(column, raw), `${column}=${JSON.stringify(raw)}`).toBe(taken);
        if (taken) expect(canonicalCell(columnByName.get(column)!, raw), `${column}=${JSON.stringify(raw)}`).toBe(raw);
      }
    }
    for (const line of flightLines(2000, 3)) {
      const bytes = Buffer.from(`${line}\r\n`);
      expect(new PlainRows(header, 1 << 16).check(bytes, 0, bytes.length - 2), line).toBe(true);
    }
  });

  it('takes a pattern-checked code once valid, and still refuses an invalid one after many rows', () => {
    const rows = new PlainRows(header, 1 << 16);
    const line = (carrier: string): Buffer => Buffer.from(names.map((n, i) => (n === 'carrier' ? carrier : row[i])).join(',') + '\n');
    for (let i = 0; i < 5000; i++) expect(rows.check(line(i % 2 ? 'AA' : 'a1'), 0, line('AA').length - 1)).toBe(i % 2 === 1);
  });

  it('refuses a date that does not exist, a field longer than the limit, a missing field and an extra one', () => {
    const rows = new PlainRows(header, 19);
    const check = (cells: string[]): boolean => {
      const bytes = Buffer.from(cells.join(',') + '\n');
      return rows.check(bytes, 0, bytes.length - 1);
    };
    const named = (name: string): string[] => names.map((n, i) => (n === 'name' ? name : row[i]!));
    expect(check(named('x'.repeat(19)))).toBe(true);
    expect(check(named('x'.repeat(20)))).toBe(false);
    expect(check(names.map((n, i) => (n === 'month' ? '2' : n === 'day' ? '30' : row[i]!)))).toBe(false);
    expect(check(row.slice(0, -1))).toBe(false);
    expect(check([...row, 'x'])).toBe(false);
  });

  it('writes the row in schema order with its line, in any column order', () => {
    const order = [...names].reverse();
    const chunks: Buffer[] = [];
    const out = new ByteOutput(64, (c) => chunks.push(c));
    const rows = new PlainRows(headerMap(order), 1 << 16);
    const bytes = Buffer.from(`x${[...row].reverse().join(',')}\n`);
    expect(rows.check(bytes, 1, bytes.length - 1)).toBe(true);
    rows.write(out, bytes, 1, bytes.length - 1, 1234567);
    out.flush();
    expect(Buffer.concat(chunks).toString()).toBe(`${row.join(',')},1234567\n`);
    expect(COLUMNS.map((c) => c.name)).toEqual(names);
  });
});
