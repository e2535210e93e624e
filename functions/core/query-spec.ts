/**
 * A validated, typed description of a query. HTTP parameters are parsed into
 * this shape (every column and operator checked against the schema) before any
 * SQL exists; each warehouse compiles it with `sql.ts` in its own dialect.
 */
import type { ColumnType } from './schema.js';

export type Scalar = string | number | boolean;

export type ComparisonOp = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'like' | 'ilike' | 'not_like' | 'not_ilike';

export type Filter =
  | { column: string; op: ComparisonOp; value: Scalar }
  | { column: string; op: 'in' | 'not_in'; values: Scalar[] }
  | { column: string; op: 'is_null' | 'not_null' };

export interface OrderKey {
  /** A queryable column or, in an aggregate query, a measure's alias. */
  column: string;
  direction: 'asc' | 'desc';
  nulls: 'first' | 'last';
}

export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max';

export interface Measure {
  fn: AggregateFn;
  /** `null` only for `count`: COUNT(*). */
  column: string | null;
  /** Output name; checked to be a plain identifier that is not a column name. */
  alias: string;
}

export interface Aggregate {
  /** Grouping columns; empty means one row over everything that matches. */
  groupBy: string[];
  measures: Measure[];
}

export interface QuerySpec {
  /** Columns to return, in order (the grouping columns when `aggregate` is set). */
  select: string[];
  filters: Filter[];
  /** The full sort, ending in a unique key so keyset pagination is exact. */
  order: OrderKey[];
  limit: number;
  /** Keyset position: the values of `order`'s columns in the last row already seen. */
  after?: (Scalar | null)[];
  /** Turns the query into a GROUP BY; `after` is then not allowed. */
  aggregate?: Aggregate;
}

/** What an export runs: a query without a keyset position, and a limit only when one was asked for. */
export type ExportSpec = Omit<QuerySpec, 'limit' | 'after'> & { limit?: number };

export type ParamType = ColumnType | 'date';

export interface TypedParam {
  name: string;
  value: Scalar | Scalar[] | null;
  type: ParamType;
  array: boolean;
}

export interface CompiledQuery {
  sql: string;
  params: TypedParam[];
  /** The result's columns and their types, so an adapter can convert values it reads. */
  columns: { name: string; type: ParamType }[];
}
