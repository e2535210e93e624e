/**
 * Compiles a QuerySpec to SQL with named, typed parameters. Identifiers come
 * only from the schema (checked again here); every value is a parameter.
 */
import { QUERYABLE_COLUMNS, TABLE } from './schema.js';
import type { CompiledQuery, Filter, OrderKey, ParamType, QuerySpec, Scalar, TypedParam } from './query-spec.js';

export interface Dialect {
  /** How a named parameter is written in SQL. */
  param(name: string): string;
  /** The table reference. */
  table: string;
  /** Case-insensitive LIKE. */
  ilike(column: string, param: string): string;
  /** `x IN (...)` over an array parameter. */
  inArray(column: string, param: string): string;
}

export const duckDbDialect = (table = TABLE): Dialect => ({
  param: (name) => `$${name}`,
  table,
  ilike: (column, p) => `${column} ILIKE ${p}`,
  inArray: (column, p) => `list_contains(${p}, ${column})`,
});

/** `table` is the fully qualified `project.dataset.table`, backquoted. */
export const bigQueryDialect = (table: string): Dialect => ({
  param: (name) => `@${name}`,
  table: `\`${table}\``,
  ilike: (column, p) => `LOWER(${column}) LIKE LOWER(${p})`,
  inArray: (column, p) => `${column} IN UNNEST(${p})`,
});

const COMPARATORS = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', like: 'LIKE' } as const;

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
    this.list.push({ name, value, type: columnType(column), array: Array.isArray(value) });
    return this.dialect.param(name);
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
      return dialect.inArray(f.column, params.add(f.column, f.values));
    case 'ilike':
      return dialect.ilike(f.column, params.add(f.column, f.value));
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

export function compileSelect(spec: QuerySpec, dialect: Dialect): CompiledQuery {
  const params = new Params(dialect);
  // Order columns are always returned too: the next cursor is built from them.
  const select = [...new Set([...spec.select, ...spec.order.map((k) => k.column)])].map((c) => (columnType(c), c));
  const where = spec.filters.map((f) => filterSql(f, params, dialect));
  if (spec.after) where.push(keysetSql(spec.order, spec.after, params));
  const order = spec.order.map((k) => (columnType(k.column), `${k.column} ${k.direction.toUpperCase()} NULLS ${k.nulls.toUpperCase()}`));
  const sql = [
    `SELECT ${select.join(', ')}`,
    `FROM ${dialect.table}`,
    where.length ? `WHERE ${where.join(' AND ')}` : '',
    order.length ? `ORDER BY ${order.join(', ')}` : '',
    `LIMIT ${Math.trunc(spec.limit)}`,
  ].filter(Boolean);
  return { sql: sql.join('\n'), params: params.list };
}
