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

export function rowsToJson(schema: TableSchema | undefined, rows: unknown[]): QueryResult {
  const fields = schema?.fields ?? [];
  return {
    columns: fields.map((f) => f.name),
    rows: rows.map((row) => {
      const cells = (row as { f: { v: unknown }[] }).f;
      return Object.fromEntries(
        fields.map((field, i) => {
          const v = cells[i]?.v ?? null;
          return [field.name, v === null ? null : NUMERIC.has(field.type) ? Number(v) : v];
        }),
      );
    }),
  };
}
