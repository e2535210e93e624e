/**
 * The flights schema: the single source of truth for columns and types.
 * The CSV validator, the canonical CSV the loader reads, the DuckDB DDL, the
 * BigQuery schema and the OpenAPI query parameters are all derived from here.
 */

export type ColumnType = 'integer' | 'number' | 'string' | 'timestamp';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** An empty cell (or `NA`) is NULL; otherwise a value is required. */
  readonly nullable: boolean;
  /** Whether an upload's header must contain the column (exports differ on `id` and `name`). */
  readonly inHeader: 'required' | 'optional';
  readonly description: string;
  readonly min?: number;
  readonly max?: number;
  readonly pattern?: RegExp;
  readonly maxLength?: number;
}

const col = (name: string, type: ColumnType, description: string, extra: Partial<Column> = {}): Column => ({
  name,
  type,
  description,
  nullable: false,
  inHeader: 'required',
  ...extra,
});

const nullable = { nullable: true } as const;

export const COLUMNS: readonly Column[] = [
  col('id', 'integer', 'Row number in the source file (not unique across files)', { nullable: true, inHeader: 'optional' }),
  col('year', 'integer', 'Year of the flight date', { min: 1900, max: 2200 }),
  col('month', 'integer', 'Month of the flight date', { min: 1, max: 12 }),
  col('day', 'integer', 'Day of the flight date', { min: 1, max: 31 }),
  col('dep_time', 'integer', 'Actual departure, local time HHMM', { ...nullable, min: 0, max: 2400 }),
  col('sched_dep_time', 'integer', 'Scheduled departure, local time HHMM', { min: 0, max: 2400 }),
  col('dep_delay', 'number', 'Departure delay in minutes; negative is early', nullable),
  col('arr_time', 'integer', 'Actual arrival, local time HHMM', { ...nullable, min: 0, max: 2400 }),
  col('sched_arr_time', 'integer', 'Scheduled arrival, local time HHMM', { min: 0, max: 2400 }),
  col('arr_delay', 'number', 'Arrival delay in minutes; negative is early', nullable),
  col('carrier', 'string', 'Two-character airline code', { pattern: /^[A-Z0-9]{2}$/ }),
  col('flight', 'integer', 'Flight number', { min: 0 }),
  col('tailnum', 'string', 'Plane tail number', { ...nullable, maxLength: 16 }),
  col('origin', 'string', 'Origin airport code', { pattern: /^[A-Z0-9]{3}$/ }),
  col('dest', 'string', 'Destination airport code', { pattern: /^[A-Z0-9]{3}$/ }),
  col('air_time', 'number', 'Minutes in the air', { ...nullable, min: 0 }),
  col('distance', 'number', 'Distance in miles', { min: 0 }),
  col('hour', 'integer', 'Scheduled departure hour', { min: 0, max: 24 }),
  col('minute', 'integer', 'Scheduled departure minute', { min: 0, max: 59 }),
  col('time_hour', 'timestamp', 'Scheduled departure hour, local time (YYYY-MM-DD HH:MM:SS)'),
  col('name', 'string', 'Airline name', { nullable: true, inHeader: 'optional', maxLength: 200 }),
];

/** Columns the warehouse adds to every row: derived values and lineage. */
export const DERIVED_COLUMNS = [
  { name: 'flight_date', type: 'date', description: 'DATE(year, month, day); the partitioning column' },
  { name: '_source_object', type: 'string', description: 'Object the row was loaded from' },
  { name: '_source_generation', type: 'integer', description: 'Generation of that object' },
  { name: '_source_line', type: 'integer', description: 'Line of the uploaded file where the row starts' },
  { name: '_loaded_at', type: 'timestamp', description: 'When the row was loaded' },
] as const;

export type DerivedColumnName = (typeof DERIVED_COLUMNS)[number]['name'];

/**
 * `timestamp` columns that hold a moment rather than a local wall-clock time:
 * stored zone-less in UTC by both warehouses, shown as ISO 8601 with `Z`.
 */
export const INSTANT_COLUMNS: ReadonlySet<string> = new Set<DerivedColumnName>(['_loaded_at']);

export const TABLE = 'flights';
export const PARTITION_COLUMN = 'flight_date';
export const CLUSTER_COLUMNS = ['carrier', 'origin', 'dest'] as const;

/** The canonical CSV written by ingest: schema columns in schema order, then the source line. */
export const CANONICAL_HEADER: readonly string[] = [...COLUMNS.map((c) => c.name), '_source_line'];

export const columnByName: ReadonlyMap<string, Column> = new Map(COLUMNS.map((c) => [c.name, c]));

/** Tokens that mean NULL in real exports: pandas writes '', R writes NA. */
export const NULL_TOKENS: ReadonlySet<string> = new Set(['', 'NA']);

const DUCKDB_TYPES: Record<ColumnType | 'date', string> = {
  integer: 'BIGINT',
  number: 'DOUBLE',
  string: 'VARCHAR',
  timestamp: 'TIMESTAMP',
  date: 'DATE',
};

/** `time_hour` is a local wall-clock time with no zone, which BigQuery calls DATETIME. */
const BIGQUERY_TYPES: Record<ColumnType | 'date', string> = {
  integer: 'INT64',
  number: 'FLOAT64',
  string: 'STRING',
  timestamp: 'DATETIME',
  date: 'DATE',
};

export const bigQueryType = (type: ColumnType | 'date'): string => BIGQUERY_TYPES[type];
export const duckDbType = (type: ColumnType | 'date'): string => DUCKDB_TYPES[type];

export function duckDbTableDdl(table = TABLE): string {
  const defs = [
    ...COLUMNS.map((c) => `${c.name} ${DUCKDB_TYPES[c.type]}${c.nullable ? '' : ' NOT NULL'}`),
    'flight_date DATE NOT NULL',
    '_source_object VARCHAR NOT NULL',
    '_source_generation BIGINT NOT NULL',
    '_source_line BIGINT NOT NULL',
    '_loaded_at TIMESTAMP NOT NULL',
  ];
  return `CREATE TABLE IF NOT EXISTS ${table} (\n  ${defs.join(',\n  ')}\n)`;
}

/** DuckDB `read_csv` column spec for the canonical CSV, so nothing is sniffed. */
export function duckDbCanonicalCsvColumns(): Record<string, string> {
  return Object.fromEntries([
    ...COLUMNS.map((c) => [c.name, DUCKDB_TYPES[c.type]] as const),
    ['_source_line', 'BIGINT'] as const,
  ]);
}

export interface BigQueryField {
  name: string;
  type: string;
  mode: 'REQUIRED' | 'NULLABLE';
  description: string;
}

export function bigQueryTableSchema(): BigQueryField[] {
  return [
    ...COLUMNS.map((c) => ({
      name: c.name,
      type: BIGQUERY_TYPES[c.type],
      mode: c.nullable ? ('NULLABLE' as const) : ('REQUIRED' as const),
      description: c.description,
    })),
    ...DERIVED_COLUMNS.map((c) => ({
      name: c.name,
      type: BIGQUERY_TYPES[c.type],
      mode: 'REQUIRED' as const,
      description: c.description,
    })),
  ];
}

/** The schema of the canonical CSV as BigQuery reads it (a load job or an external table). */
export function bigQueryCanonicalCsvSchema(): BigQueryField[] {
  return [
    ...bigQueryTableSchema().filter((f) => columnByName.has(f.name)),
    { name: '_source_line', type: 'INT64', mode: 'REQUIRED', description: 'Line of the uploaded file where the row starts' },
  ];
}

/** Every column a query may name: schema columns, then the derived and lineage ones. */
export const QUERYABLE_COLUMNS: ReadonlyMap<string, ColumnType | 'date'> = new Map<string, ColumnType | 'date'>([
  ...COLUMNS.map((c) => [c.name, c.type] as const),
  ...DERIVED_COLUMNS.map((c) => [c.name, c.type] as const),
]);
