/**
 * The validator's byte path (plain lines, in any column order) must write
 * what the general path (decoded, split, canonicalCell) writes, and find the
 * same faults; every field quoted sends a row down the general path.
 */
import { describe, expect, it } from 'vitest';
import { COLUMNS } from '../../functions/core/schema.js';
import { InvalidCsvError } from '../../functions/ingest/validator.js';
import { flightLines, KAGGLE_HEADER } from '../support/generate-flights.js';
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
});
