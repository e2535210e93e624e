/**
 * Compiles a QuerySpec to SQL with named, typed parameters. Identifiers come
 * only from the schema (checked again here) or are measure aliases the parser
 * has restricted to plain identifiers, which are quoted anyway; every value is
 * a parameter.
 */
import { cellKind, type CellKind } from './cell-text.js';
import { QUERYABLE_COLUMNS, TABLE } from './schema.js';
import type { Aggregate, CompiledQuery, ExportSpec, Filter, Measure, OrderKey, ParamType, QuerySpec, Scalar, TypedParam } from './query-spec.js';

export interface Dialect {
  /** How a named parameter of this type is written in SQL. */
  param(name: string, type: ParamType, array: boolean): string;
  /** A quoted identifier (used for measure aliases only). */
  quote(identifier: string): string;
  /** The table reference. */
  table: string;
  /** Case-insensitive LIKE, or NOT LIKE. */
  ilike(column: string, param: string, negated: boolean): string;
  /** `x IN (...)`, or NOT IN, over an array parameter; NULL `x` matches neither. */
  inArray(column: string, param: string, negated: boolean): string;
  /** `x` as the text core/cell-text.ts specifies for a cell of this kind (NULL stays NULL). */
  cellText(x: string, kind: CellKind): string;
}

/** Below 2^53 every integral double is an exact integer, which both warehouses print without `.0` through an integer cast. */
const EXACT_INTEGERS = '9007199254740992';

/**
 * DuckDB prints a DOUBLE in its shortest round-trip form but with `.0` when
 * integral, and a TIMESTAMP with only the fraction digits it needs.
 */
const DUCKDB_CELL_TEXT: Record<CellKind, (x: string) => string> = {
  integer: (x) => `CAST(${x} AS VARCHAR)`,
  number: (x) => `CASE WHEN ${x} = trunc(${x}) AND abs(${x}) < ${EXACT_INTEGERS} THEN CAST(CAST(${x} AS BIGINT) AS VARCHAR) ELSE CAST(${x} AS VARCHAR) END`,
  string: (x) => x,
  date: (x) => `CAST(${x} AS VARCHAR)`,
  timestamp: (x) => `CAST(${x} AS VARCHAR)`,
  instant: (x) => `replace(CAST(${x} AS VARCHAR), ' ', 'T') || 'Z'`,
};

/**
 * BigQuery casts a FLOAT64 with `%.15g` (`%.17g` when 15 digits do not
 * round-trip), so a value of at most 15 significant digits prints as its
 * shortest form; `%E*S` prints only the fraction digits a DATETIME needs.
 */
const BIGQUERY_CELL_TEXT: Record<CellKind, (x: string) => string> = {
  integer: (x) => `CAST(${x} AS STRING)`,
  number: (x) => `IF(${x} = TRUNC(${x}) AND ABS(${x}) < ${EXACT_INTEGERS}, CAST(CAST(${x} AS INT64) AS STRING), CAST(${x} AS STRING))`,
  string: (x) => x,
  date: (x) => `FORMAT_DATE('%Y-%m-%d', ${x})`,
  timestamp: (x) => `FORMAT_DATETIME('%Y-%m-%d %H:%M:%E*S', ${x})`,
  instant: (x) => `FORMAT_DATETIME('%Y-%m-%dT%H:%M:%E*SZ', ${x})`,
};

/** Timestamps and dates travel as text (the parser checked the format) and DuckDB casts them. */
const DUCKDB_CASTS: Partial<Record<ParamType, string>> = { timestamp: 'TIMESTAMP', date: 'DATE' };

export const duckDbDialect = (table = TABLE): Dialect => ({
  param: (name, type, array) => {
    const cast = DUCKDB_CASTS[type];
    return cast ? `$${name}::${cast}${array ? '[]' : ''}` : `$${name}`;
  },
  quote: (identifier) => `"${identifier}"`,
  table,
  ilike: (column, p, negated) => `${column} ${negated ? 'NOT ILIKE' : 'ILIKE'} ${p}`,
  inArray: (column, p, negated) => `${negated ? 'NOT ' : ''}list_contains(${p}, ${column})`,
  cellText: (x, kind) => DUCKDB_CELL_TEXT[kind](x),
});

/** `table` is the fully qualified `project.dataset.table`, backquoted. */
export const bigQueryDialect = (table: string): Dialect => ({
  param: (name) => `@${name}`,
  quote: (identifier) => `\`${identifier}\``,
  table: `\`${table}\``,
  ilike: (column, p, negated) => `LOWER(${column}) ${negated ? 'NOT LIKE' : 'LIKE'} LOWER(${p})`,
  inArray: (column, p, negated) => `${column} ${negated ? 'NOT IN' : 'IN'} UNNEST(${p})`,
  cellText: (x, kind) => BIGQUERY_CELL_TEXT[kind](x),
});

const COMPARATORS = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', like: 'LIKE', not_like: 'NOT LIKE' } as const;

function columnType(column: string): ParamType {
  const type = QUERYABLE_COLUMNS.get(column);
  if (!type) throw new Error(`not a queryable column: ${column}`);
  return type;
}

class Params {
  readonly list: TypedParam[] = [];
  constructor(private readonly dialect: Dialect) {}
  add(column: string, value: Scalar | Scalar[] | null): string {
    const name = `p${this.list.length}`;
    const type = columnType(column);
    const array = Array.isArray(value);
    this.list.push({ name, value, type, array });
    return this.dialect.param(name, type, array);
  }
}

function filterSql(f: Filter, params: Params, dialect: Dialect): string {
  columnType(f.column);
  switch (f.op) {
    case 'is_null':
      return `${f.column} IS NULL`;
    case 'not_null':
      return `${f.column} IS NOT NULL`;
    case 'in':
    case 'not_in':
      return dialect.inArray(f.column, params.add(f.column, f.values), f.op === 'not_in');
    case 'ilike':
    case 'not_ilike':
      return dialect.ilike(f.column, params.add(f.column, f.value), f.op === 'not_ilike');
    default:
      return `${f.column} ${COMPARATORS[f.op]} ${params.add(f.column, f.value)}`;
  }
}

/** Rows strictly after `value` in this key's sort order (NULL placement included). */
function afterKey(key: OrderKey, value: Scalar | null, params: Params): string {
  const nullsLast = key.nulls === 'last';
  if (value === null) return nullsLast ? 'FALSE' : `${key.column} IS NOT NULL`;
  const cmp = `${key.column} ${key.direction === 'asc' ? '>' : '<'} ${params.add(key.column, value)}`;
  return nullsLast ? `(${cmp} OR ${key.column} IS NULL)` : cmp;
}

function sameKey(key: OrderKey, value: Scalar | null, params: Params): string {
  return value === null ? `${key.column} IS NULL` : `${key.column} = ${params.add(key.column, value)}`;
}

/** (k1 after c1) OR (k1 = c1 AND k2 after c2) OR … */
function keysetSql(order: OrderKey[], after: (Scalar | null)[], params: Params): string {
  if (after.length !== order.length) throw new Error('cursor does not match the sort');
  const branches = order.map((key, i) => {
    const equal = order.slice(0, i).map((k, j) => sameKey(k, after[j] ?? null, params));
    return [...equal, afterKey(key, after[i] ?? null, params)].join(' AND ');
  });
  return `(${branches.map((b) => `(${b})`).join(' OR ')})`;
}

function measureType(m: Measure): ParamType {
  if (m.fn === 'count') return 'integer';
  const type = columnType(m.column ?? '');
  if (type !== 'integer' && type !== 'number') throw new Error(`${m.fn} needs a numeric column: ${m.column}`);
  return m.fn === 'avg' ? 'number' : type;
}

function measureSql(m: Measure, dialect: Dialect): string {
  measureType(m);
  return `${m.fn.toUpperCase()}(${m.column ?? '*'}) AS ${dialect.quote(m.alias)}`;
}

function orderSql(order: OrderKey[], name: (column: string) => string): string[] {
  return order.map((k) => `${name(k.column)} ${k.direction.toUpperCase()} NULLS ${k.nulls.toUpperCase()}`);
}

const whereSql = (where: string[]): string => (where.length ? `WHERE ${where.join(' AND ')}` : '');

const limitSql = (limit: number | undefined): string => (limit === undefined ? '' : `LIMIT ${Math.trunc(limit)}`);

/** `output` lists the result's columns in order: grouping columns and measure aliases. */
function compileAggregate(spec: ExportSpec, agg: Aggregate, dialect: Dialect, output: readonly string[]): CompiledQuery {
  const params = new Params(dialect);
  const measures = new Map(agg.measures.map((m) => [m.alias, m]));
  const orderName = (c: string): string => {
    if (measures.has(c)) return dialect.quote(c);
    if (agg.groupBy.includes(c)) return c;
    throw new Error(`order names neither a grouping column nor a measure: ${c}`);
  };
  const order = orderSql(spec.order, orderName);
  const item = (name: string): string => {
    const measure = measures.get(name);
    if (measure) return measureSql(measure, dialect);
    if (!agg.groupBy.includes(name)) throw new Error(`not a grouping column or a measure: ${name}`);
    return name;
  };
  const sql = [
    `SELECT ${output.map(item).join(', ')}`,
    `FROM ${dialect.table}`,
    whereSql(spec.filters.map((f) => filterSql(f, params, dialect))),
    agg.groupBy.length ? `GROUP BY ${agg.groupBy.join(', ')}` : '',
    order.length ? `ORDER BY ${order.join(', ')}` : '',
    limitSql(spec.limit),
  ].filter(Boolean);
  const columns = output.map((name) => {
    const measure = measures.get(name);
    return { name, type: measure ? measureType(measure) : columnType(name) };
  });
  return { sql: sql.join('\n'), params: params.list, columns };
}

/** Rows of `select` in the spec's order, after the keyset position if there is one. */
function compileRows(spec: ExportSpec & { after?: QuerySpec['after'] }, select: readonly string[], dialect: Dialect): CompiledQuery {
  const params = new Params(dialect);
  const columns = select.map((name) => ({ name, type: columnType(name) }));
  const where = spec.filters.map((f) => filterSql(f, params, dialect));
  if (spec.after) where.push(keysetSql(spec.order, spec.after, params));
  const order = orderSql(spec.order, (c) => (columnType(c), c));
  const sql = [
    `SELECT ${select.join(', ')}`,
    `FROM ${dialect.table}`,
    whereSql(where),
    order.length ? `ORDER BY ${order.join(', ')}` : '',
    limitSql(spec.limit),
  ].filter(Boolean);
  return { sql: sql.join('\n'), params: params.list, columns };
}

export function compileSelect(spec: QuerySpec, dialect: Dialect): CompiledQuery {
  if (spec.aggregate) {
    if (spec.after) throw new Error('keyset pagination is not defined for aggregates');
    return compileAggregate(spec, spec.aggregate, dialect, [...spec.aggregate.groupBy, ...spec.aggregate.measures.map((m) => m.alias)]);
  }
  // Order columns are always returned too: the next cursor is built from them.
  return compileRows(spec, [...new Set([...spec.select, ...spec.order.map((k) => k.column)])], dialect);
}

/**
 * The whole result for an export, as text: exactly `output`'s columns in that
 * order, each cell written as core/cell-text.ts specifies, and no LIMIT unless
 * the spec has one. The typed query runs inside, so the outer ORDER BY sorts
 * by the values (qualified names, not the text aliases) and an aggregate's
 * order and limit apply to its groups.
 */
export function compileExport(spec: ExportSpec, output: readonly string[], dialect: Dialect): CompiledQuery {
  // Inside, the order matters only to pick the rows a LIMIT keeps.
  const typed: ExportSpec = spec.limit === undefined ? { ...spec, order: [] } : spec;
  const inner = spec.aggregate
    ? compileAggregate(typed, spec.aggregate, dialect, output)
    : compileRows(typed, [...new Set([...output, ...spec.order.map((k) => k.column)])], dialect);
  const ref = (name: string): string => `r.${dialect.quote(name)}`;
  const text = inner.columns.slice(0, output.length).map((c) => `${dialect.cellText(ref(c.name), cellKind(c.name, c.type))} AS ${dialect.quote(c.name)}`);
  const order = orderSql(spec.order, ref);
  const sql = [`SELECT ${text.join(', ')}`, `FROM (\n${inner.sql}\n) AS r`, order.length ? `ORDER BY ${order.join(', ')}` : ''].filter(Boolean);
  return { sql: sql.join('\n'), params: inner.params, columns: output.map((name) => ({ name, type: 'string' as const })) };
}

/** How many rows (or groups) the query matches in all, ignoring the keyset position and the limit. */
export function compileCount(spec: QuerySpec, dialect: Dialect): CompiledQuery {
  const params = new Params(dialect);
  const where = whereSql(spec.filters.map((f) => filterSql(f, params, dialect)));
  const columns = [{ name: 'count', type: 'integer' as const }];
  const count = `COUNT(*) AS ${dialect.quote('count')}`;
  const groupBy = spec.aggregate?.groupBy;
  if (!groupBy) return { sql: [`SELECT ${count}`, `FROM ${dialect.table}`, where].filter(Boolean).join('\n'), params: params.list, columns };
  // A query without grouping columns still yields one group, even over no rows.
  const inner = groupBy.length
    ? [`SELECT ${groupBy.map((c) => (columnType(c), c)).join(', ')}`, `FROM ${dialect.table}`, where, `GROUP BY ${groupBy.join(', ')}`]
    : [`SELECT COUNT(*) AS n`, `FROM ${dialect.table}`, where];
  const sql = [`SELECT ${count}`, `FROM (${inner.filter(Boolean).join('\n')}) AS g`].join('\n');
  return { sql, params: params.list, columns };
}
