/**
 * Response formats. CSV and NDJSON are produced row by row in bounded chunks,
 * so an export of any size streams without being held as one string.
 */
import { Transform } from 'node:stream';
import { cellKind, cellText, type CellKind } from '../core/cell-text.js';
import { Problem } from '../core/problem.js';
import { QUERYABLE_COLUMNS } from '../core/schema.js';
import { invalidParameter } from './values.js';

export const FORMATS = ['json', 'csv', 'ndjson'] as const;
export type Format = (typeof FORMATS)[number];

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

type Row = Record<string, unknown>;

/** Rows are buffered into chunks of about this many characters before being passed on. */
const CHUNK = 64 * 1024;

/** RFC 4180: quote when needed, double inner quotes. NULL is an empty field; an empty string is "" so the two differ. */
function csvField(text: string | null): string {
  if (text === null) return '';
  return text === '' || /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A schema column's kind; a measure (count, sum, avg…) is written as the number the warehouse returned. */
const kindOf = (column: string): CellKind => {
  const type = QUERYABLE_COLUMNS.get(column);
  return type ? cellKind(column, type) : 'string';
};

export const csvHeader = (columns: readonly string[]): string => `${columns.map(csvField).join(',')}\r\n`;
export const csvLine = (row: Row, columns: readonly string[]): string => `${columns.map((c) => csvField(cellText(kindOf(c), row[c]))).join(',')}\r\n`;

/** JSON keeps numbers as numbers; times read as in CSV (ISO 8601 with `Z` for instants). */
const TIME_KINDS: ReadonlySet<CellKind> = new Set(['timestamp', 'instant']);

export function presentRow(row: Row): Row {
  const shown = { ...row };
  for (const column of Object.keys(row)) {
    const kind = kindOf(column);
    if (TIME_KINDS.has(kind)) shown[column] = cellText(kind, row[column]);
  }
  return shown;
}

/** Only the columns asked for, in that order (a result may carry sort columns for the cursor). */
export const project = (row: Row, columns: readonly string[]): Row => Object.fromEntries(columns.map((c) => [c, row[c] ?? null]));

export const ndjsonLine = (row: Row, columns: readonly string[]): string => `${JSON.stringify(project(row, columns))}\n`;

/** Text chunks of `rows` in `format` ('csv' starts with the header row). */
export async function* serialize(format: 'csv' | 'ndjson', rows: Iterable<Row> | AsyncIterable<Row>, columns: readonly string[]): AsyncGenerator<string> {
  const line = format === 'csv' ? csvLine : ndjsonLine;
  let chunk = format === 'csv' ? csvHeader(columns) : '';
  for await (const row of rows) {
    chunk += line(row, columns);
    if (chunk.length >= CHUNK) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** The same as a stream: row objects in, text out; pipe it into the response. */
export function serializer(format: 'csv' | 'ndjson', columns: readonly string[]): Transform {
  const line = format === 'csv' ? csvLine : ndjsonLine;
  let started = false;
  return new Transform({
    writableObjectMode: true,
    transform(row: Row, _encoding, done) {
      const head = !started && format === 'csv' ? csvHeader(columns) : '';
      started = true;
      done(null, head + line(row, columns));
    },
    flush(done) {
      // An empty CSV still has its header.
      done(null, !started && format === 'csv' ? csvHeader(columns) : undefined);
    },
  });
}

const MEDIA_TYPES: Record<string, Format> = {
  'application/json': 'json',
  'text/csv': 'csv',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/*': 'json',
  'text/*': 'csv',
  '*/*': 'json',
};

/**
 * The `format` parameter wins; otherwise the Accept header's most preferred
 * type we serve (q-values honoured, q=0 meaning "not this"); no Accept is JSON.
 */
export function chooseFormat(formatParam: string | null | undefined, acceptHeader: string | null | undefined): Format {
  if (formatParam !== null && formatParam !== undefined) {
    if (!(FORMATS as readonly string[]).includes(formatParam)) throw invalidParameter('format', `format: ${JSON.stringify(formatParam)} is not supported.`, FORMATS);
    return formatParam as Format;
  }
  if (!acceptHeader?.trim()) return 'json';
  const offers = acceptHeader.split(',').map((part, index) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return { format: MEDIA_TYPES[type], q: q ? Number(q.slice(2)) : 1, index };
  });
  const best = offers
    .filter((o): o is { format: Format; q: number; index: number } => o.format !== undefined && o.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index)[0];
  if (!best) {
    throw new Problem(406, 'not-acceptable', 'Not acceptable', `None of the accepted types can be produced; ask for one of ${Object.keys(MEDIA_TYPES).join(', ')}, or use the format parameter.`, {
      allowed: Object.keys(MEDIA_TYPES),
    });
  }
  return best.format;
}
