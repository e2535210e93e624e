/**
 * The REST API's rows (`{f: [{v}]}`, every value a string) → plain JSON
 * objects shaped like the DuckDB warehouse's: numbers for INT64 and FLOAT64,
 * strings for dates and times, null for NULL.
 */
import type { QueryResult } from '../../core/ports.js';

export interface TableSchema {
  fields: { name: string; type: string }[];
}

const NUMERIC = new Set(['INT64', 'INTEGER', 'FLOAT64', 'FLOAT', 'NUMERIC', 'BIGNUMERIC']);

/**
 * A TIMESTAMP arrives as microseconds since the epoch (the requests ask for
 * `useInt64Timestamp`): ISO 8601 in UTC with all six fraction digits.
 */
function isoFromMicros(v: string): string {
  const micros = BigInt(v);
  const sub = ((micros % 1000n) + 1000n) % 1000n;
  const iso = new Date(Number((micros - sub) / 1000n)).toISOString();
  return `${iso.slice(0, -1)}${String(sub).padStart(3, '0')}Z`;
}

/** Integers beyond 2^53 (object generations) stay exact as strings; DATETIME reads as the uploaded text did. */
function value(type: string, v: string): unknown {
  if (NUMERIC.has(type)) {
    const n = Number(v);
    return Number.isSafeInteger(n) || !/^-?\d+$/.test(v) ? n : v;
  }
  if (type === 'TIMESTAMP') return isoFromMicros(v);
  return type === 'DATETIME' ? v.replace('T', ' ') : v;
}

export function rowsToJson(schema: TableSchema | undefined, rows: unknown[]): QueryResult {
  const fields = schema?.fields ?? [];
  return {
    columns: fields.map((f) => f.name),
    rows: rows.map((row) => {
      const cells = (row as { f: { v: unknown }[] }).f;
      return Object.fromEntries(
        fields.map((field, i) => {
          const v = cells[i]?.v ?? null;
          return [field.name, v === null ? null : value(field.type, String(v))];
        }),
      );
    }),
  };
}
