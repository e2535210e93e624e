/**
 * How a result value is written as text: the one specification of a CSV cell,
 * for `GET /getdata?format=csv` (which applies it in JavaScript) and for
 * `POST /exports` (where each warehouse writes the file itself, so core/sql.ts
 * compiles these same rules into the export's SELECT, per dialect, and the
 * tests hold the SQL to this module).
 */
import { INSTANT_COLUMNS, type ColumnType } from './schema.js';

/** `instant` is a `timestamp` column that holds a moment in UTC rather than a local wall-clock time. */
export type CellKind = ColumnType | 'date' | 'instant';

export const cellKind = (column: string, type: ColumnType | 'date'): CellKind => (type === 'timestamp' && INSTANT_COLUMNS.has(column) ? 'instant' : type);

/**
 * Numbers are JavaScript's shortest round-trip form (an integral value has no
 * `.0`). The warehouses reproduce it exactly for integral values below 2^53
 * and for other values of at most 15 significant digits from 0.0001 up; see
 * docs/design.md "One cell format".
 */
const numberText = (value: unknown): string => String(Number(value));

const CLOCK = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d*?)0*)?Z?$/;

/** `YYYY-MM-DD HH:MM:SS`, with as many fraction digits as the value needs (none when it is a whole second). */
function clockText(value: unknown, separator: ' ' | 'T', zone: '' | 'Z'): string {
  const text = String(value);
  const m = CLOCK.exec(text);
  if (!m) throw new Error(`not a timestamp the warehouse writes: ${JSON.stringify(text)}`);
  return `${m[1]}${separator}${m[2]}${m[3] ? `.${m[3]}` : ''}${zone}`;
}

/** The cell's text; null for SQL NULL (an empty CSV cell). */
export function cellText(kind: CellKind, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'number':
      return numberText(value);
    case 'timestamp':
      return clockText(value, ' ', '');
    case 'instant':
      // ISO 8601 in UTC: the warehouses hold the instant zone-less, in UTC.
      return clockText(value, 'T', 'Z');
    default:
      return String(value);
  }
}
