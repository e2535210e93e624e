/**
 * A validated, typed description of a query. HTTP parameters are parsed into
 * this shape (every column and operator checked against the schema) before any
 * SQL exists; each warehouse compiles it with `sql.ts` in its own dialect.
 */
import type { ColumnType } from './schema.js';

export type Scalar = string | number | boolean;

export type ComparisonOp = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'like' | 'ilike';

export type Filter =
  | { column: string; op: ComparisonOp; value: Scalar }
  | { column: string; op: 'in'; values: Scalar[] }
  | { column: string; op: 'is_null' | 'not_null' };

export interface OrderKey {
  column: string;
  direction: 'asc' | 'desc';
  nulls: 'first' | 'last';
}

export interface QuerySpec {
  /** Columns to return, in order. */
  select: string[];
  filters: Filter[];
  /** The full sort, ending in a unique key so keyset pagination is exact. */
  order: OrderKey[];
  limit: number;
  /** Keyset position: the values of `order`'s columns in the last row already seen. */
  after?: (Scalar | null)[];
}

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
}
