/**
 * The validator's byte path (plain lines, in any column order) must write
 * what the general path (decoded, split, canonicalCell) writes, and find the
 * same faults; every field quoted sends a row down the general path. A file
 * checked whole in one call gives what the stream gives, however its chunks fall.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { COLUMNS } from '../../functions/core/schema.js';
import { checkWhole, CsvValidator, DEFAULT_LIMITS, InvalidCsvError } from '../../functions/ingest/validator.js';
import { flightLines, flightsCsv, KAGGLE_HEADER } from '../support/generate-flights.js';
import { canonicalOf } from '../support/canonical.js';

const names = KAGGLE_HEADER.split(',');
const row = [...flightLines(1)][0]!.split(',');
const withCells = (cells: Record<string, string>): string => names.map((n, i) => cells[n] ?? row[i]).join(',');

/** The same rows with the columns reversed: the byte path puts them back in schema order. */
const reversed = (lines: string[]): string => lines.map((l) => l.split(',').reverse().join(',')).join('\n') + '\n';
/** The same rows with every field quoted: no row can take the byte path. */
const quoted = (lines: string[]): string => lines.map((l) => l.split(',').map((f) => (f.startsWith('"') ? f : `"${f}"`)).join(',')).join('\n') + '\n';

async function fault(csv: string): Promise<unknown> {
  const e = await canonicalOf(csv).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(InvalidCsvError);
  const { line, column, field, reason } = (e as InvalidCsvError).faults[0]!;
  return { line, column, field, reason };
}

describe('CsvValidator', () => {
  it('writes the same canonical rows in schema order as in any other order, canonical or not', async () => {
    const rows = [
      ...flightLines(50),
      withCells({ flight: '0517', dep_delay: '-0', arr_delay: '2.50', time_hour: '2013-01-01T05:00' }),
      withCells({ dep_time: 'NA', tailnum: 'NA', name: '', distance: ' 17 ', year: '2013.0' }),
      withCells({ name: 'Name with "quotes"' }).replace('Name with "quotes"', '"Name with ""quotes"""'),
    ];
    expect(KAGGLE_HEADER).toBe(COLUMNS.map((c) => c.name).join(','));
    const inOrder = await canonicalOf([KAGGLE_HEADER, ...rows].join('\n') + '\n');
    expect(await canonicalOf(reversed([KAGGLE_HEADER, ...rows]))).toBe(inOrder);
    expect(await canonicalOf(quoted([KAGGLE_HEADER, ...rows]))).toBe(inOrder);
    expect(inOrder.split('\n')[1]).toBe(`${rows[0]},2`);
    // Without the optional columns, and with CRLF line ends: the byte path leaves those cells empty and drops the CR.
    const withoutOptional = [KAGGLE_HEADER, ...rows].map((l) => l.split(',').slice(1, -1).join(','));
    expect(await canonicalOf(withoutOptional.join('\r\n'))).toBe(await canonicalOf(quoted(withoutOptional)));
  });

  it('finds the same fault on a plain line in schema order as in any other order', async () => {
    const cases: Record<string, string>[] = [
      { day: '30', month: '2' },
      { month: '13' },
      { carrier: 'U1A' },
      { tailnum: 'N'.repeat(17) },
      { year: '' },
      { time_hour: '2013-02-29 05:00:00' },
      { name: 'bad \uFFFD' },
    ];
    for (const cells of cases) {
      const lines = [KAGGLE_HEADER, ...flightLines(2), withCells(cells)];
      const inOrder = (await fault(lines.join('\n') + '\n')) as { column: number };
      const otherOrder = (await fault(reversed(lines))) as { column: number };
      expect({ ...inOrder, column: names.length + 1 - inOrder.column }).toEqual(otherOrder);
      expect(await fault(quoted(lines))).toEqual(inOrder);
      expect(inOrder).toMatchObject({ line: 4 });
    }
  });

  it('reports a row with the wrong number of fields from the byte path', async () => {
    expect(await fault(`${KAGGLE_HEADER}\n${row.slice(0, 20).join(',')}\n`)).toEqual({ line: 2, column: 21, field: undefined, reason: 'expected 21 fields, found 20' });
  });

  it('gives the same canonical CSV, rows and faults for a file checked whole as for the file streamed in small chunks', async () => {
    const limits = { ...DEFAULT_LIMITS, maxRows: 1000 };
    const streamed = async (bytes: Buffer): Promise<unknown> => {
      const validator = new CsvValidator(limits);
      const chunks = Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) => bytes.subarray(i * 97, (i + 1) * 97));
      return text(Readable.from(chunks).pipe(validator)).then(
        (canonical) => ({ canonical, rows: validator.rows }),
        (e: InvalidCsvError) => ({ faults: e.faults, faultCount: e.faultCount, rows: e.rows, status: e.status }),
      );
    };
    const whole = (bytes: Buffer): unknown => {
      try {
        const { canonical, rows } = checkWhole(bytes, limits);
        return { canonical: Buffer.concat(canonical).toString(), rows };
      } catch (e) {
        const { faults, faultCount, rows, status } = e as InvalidCsvError;
        return { faults, faultCount, rows, status };
      }
    };
    const dir = new URL('../fixtures/bad/', import.meta.url);
    const bad = fs.readdirSync(dir).filter((f) => f.endsWith('.csv')).map((f) => fs.readFileSync(new URL(f, dir)));
    // 900 rows: canonical output past one 64 KiB chunk; 1001: past maxRows.
    const files = [Buffer.from(flightsCsv(900, 5)), Buffer.from(flightsCsv(1001, 6)), Buffer.from(reversed([KAGGLE_HEADER, ...flightLines(3)])), ...bad];
    const outcomes = files.map(whole);
    expect(outcomes[0]).toMatchObject({ rows: 900 });
    expect(outcomes[1]).toMatchObject({ status: 413 });
    for (const [i, bytes] of files.entries()) expect(outcomes[i]).toEqual(await streamed(bytes));
  });
});
