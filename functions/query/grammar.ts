/**
 * The GET /getdata query grammar: PostgREST's, on one table.
 *
 *   <column>=<op>.<value>        eq neq gt gte lt lte                 dep_delay=gt.30
 *                                like ilike (text; * is the wildcard)  tailnum=like.N5*
 *                                in.(a,b,"c,d")  ("…" quotes , ( ) and \ escapes)
 *                                is.null  is.not_null
 *   <column>=not.<op>.<value>    negates any of the above             carrier=not.in.(UA,AA)
 *     A column given several times ANDs the conditions.
 *   from=YYYY-MM-DD  to=YYYY-MM-DD   inclusive range on flight_date
 *   select=a,b,c                 default: every schema column (lineage and derived only when named)
 *   select=carrier,month,count(),avg_delay:dep_delay.avg(),distance.sum()
 *                                PostgREST aggregates: count() counts rows, col.count() non-NULL
 *                                values; sum/avg/min/max take numeric columns. The plain columns
 *                                are the GROUP BY; an aggregate is named by its function unless
 *                                given an alias (alias:…). Aggregates take no cursor.
 *   order=col.desc.nullslast,col2  asc is the default; NULLs last ascending, first descending.
 *                                A unique tiebreaker (the row's source generation, line and
 *                                object; for aggregates the grouping columns) is always appended.
 *   limit=10                     0 to maxLimit (default 10000)
 *   cursor=<opaque>              the next page; valid only with the same order and filters
 *   count=exact                  also report how many rows (groups) match in all
 *   format=json|csv|ndjson       otherwise the Accept header decides (see formats.ts)
 *
 * Not taken (each a 400 listing what is): PostgREST's or=/and= trees, offset
 * (pages are keyset-only, so they stay exact while rows arrive), column
 * renaming and casts in select, and operators with no use on these types
 * (match, fts, cs, cd, ov, is.true/false, …).
 */
import type { Filter, Measure, OrderKey, ParamType, QuerySpec, Scalar } from '../core/query-spec.js';
import { COLUMNS, QUERYABLE_COLUMNS, PARTITION_COLUMN } from '../core/schema.js';
import { decodeCursor } from './cursor.js';
import { FORMATS, type Format } from './formats.js';
import { didYouMean, invalidParameter, invalidValue, parseValue } from './values.js';

export interface ParsedQuery {
  spec: QuerySpec;
  /** What a response shows, in the order asked for; the spec may select more (the sort columns, for the cursor). */
  columns: string[];
  count: boolean;
  /** The `format` parameter, if given; pass it to chooseFormat with the Accept header. */
  format?: Format;
}

export interface GrammarOptions {
  cursorSecret: string;
  maxLimit?: number;
  /** Parameters that shape a page (cursor, count) are taken; an export has none, so its errors do not offer them. */
  paged?: boolean;
}

export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 10_000;

const RESERVED = ['select', 'order', 'limit', 'cursor', 'count', 'format', 'from', 'to'] as const;
/**
 * Credentials for the gateway, not the query: API Gateway forwards the query
 * string whole, so the `key` of the spec's api_key_query scheme and a JWT's
 * `access_token` reach the function too.
 */
export const GATEWAY_CREDENTIAL_PARAMETERS: readonly string[] = ['key', 'access_token'];
const PAGE_ONLY: readonly string[] = ['cursor', 'count'];
const OPERATORS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'in', 'is', 'not'] as const;
const IS_VALUES = ['null', 'not_null'] as const;
export const AGGREGATES = ['count', 'sum', 'avg', 'min', 'max'] as const;
/** Upload order (generations grow with time), then file order; integers first, because sorting on them is several times faster than on the object name. */
const TIEBREAKER = ['_source_generation', '_source_line', '_source_object'] as const;
/**
 * Aliases are spliced into SQL (quoted), so they are held to plain identifiers;
 * both warehouses match names regardless of case, so an alias may not equal a
 * column or another alias but for case (ORDER BY carrier would sort by `Carrier`).
 */
const ALIAS = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const COLUMN_NAMES = [...QUERYABLE_COLUMNS.keys()];

type Op = Exclude<(typeof OPERATORS)[number], 'not'>;

const TEXT_ONLY: readonly Op[] = ['like', 'ilike'];

/** The filter operators a column of `type` takes (each may also be negated with `not.`). */
export const operatorsFor = (type: ParamType): Op[] =>
  OPERATORS.filter((op): op is Op => op !== 'not' && (type === 'string' || !TEXT_ONLY.includes(op as Op)));
const NEGATED: Record<Exclude<Op, 'is' | 'in'>, Filter['op']> = {
  eq: 'neq',
  neq: 'eq',
  gt: 'lte',
  gte: 'lt',
  lt: 'gte',
  lte: 'gt',
  like: 'not_like',
  ilike: 'not_ilike',
};

function typed(parameter: string, text: string, type: ParamType): Scalar {
  const value = parseValue(text, type);
  if (value === undefined) throw invalidValue(parameter, text, type);
  return value;
}

/** PostgREST list syntax: (a,b,"c,d"); inside quotes a backslash escapes the next character. */
function parseList(parameter: string, text: string): string[] {
  if (!text.startsWith('(') || !text.endsWith(')')) throw invalidParameter(parameter, `${parameter}: in takes a list in parentheses, e.g. in.(a,b,"c,d").`);
  const body = text.slice(1, -1);
  if (body === '') return [];
  const items: string[] = [];
  let i = 0;
  for (;;) {
    let item = '';
    if (body[i] === '"') {
      for (i++; i < body.length && body[i] !== '"'; i++) item += body[i] === '\\' ? (body[++i] ?? '') : body[i];
      if (body[i] !== '"') throw invalidParameter(parameter, `${parameter}: unterminated quoted value in the list.`);
      i++;
    } else {
      for (; i < body.length && body[i] !== ','; i++) {
        if ('"()'.includes(body[i] ?? '')) throw invalidParameter(parameter, `${parameter}: quote list values containing " ( or ).`);
        item += body[i];
      }
    }
    items.push(item);
    if (i === body.length) return items;
    if (body[i] !== ',') throw invalidParameter(parameter, `${parameter}: expected a comma after a quoted value.`);
    i++;
  }
}

function parseFilter(column: string, text: string): Filter {
  const type = QUERYABLE_COLUMNS.get(column) as ParamType;
  const negated = text.startsWith('not.');
  const rest = negated ? text.slice(4) : text;
  const dot = rest.indexOf('.');
  const op = rest.slice(0, dot) as Op;
  const arg = rest.slice(dot + 1);
  if (dot < 0 || !OPERATORS.includes(op) || (op as string) === 'not') {
    throw invalidParameter(column, `${column}: expected <operator>.<value>, e.g. ${column}=eq.<value>.`, [...operatorsFor(type), 'not']);
  }
  switch (op) {
    case 'is':
      if (arg !== 'null' && arg !== 'not_null') throw invalidParameter(column, `${column}: is takes null or not_null.`, IS_VALUES);
      return { column, op: (arg === 'null') !== negated ? 'is_null' : 'not_null' };
    case 'in':
      return { column, op: negated ? 'not_in' : 'in', values: parseList(column, arg).map((v) => typed(column, v, type)) };
    case 'like':
    case 'ilike':
      if (!operatorsFor(type).includes(op)) throw invalidParameter(column, `${column}: ${op} applies to text columns only.`, operatorsFor(type));
      return { column, op: negated ? NEGATED[op] : op, value: arg.replaceAll('*', '%') } as Filter;
    default:
      return { column, op: negated ? NEGATED[op] : op, value: typed(column, arg, type) } as Filter;
  }
}

interface Selection {
  plain: string[];
  measures: Measure[];
  /** Output names in the order asked for. */
  columns: string[];
}

const MEASURE = /^(?:([^:]+):)?(?:([a-z_0-9]+)\.)?([a-z]+)\(\)$/;

function parseMeasure(item: string): Measure | undefined {
  const m = MEASURE.exec(item);
  if (!m) return undefined;
  const [, alias, column, fn] = m;
  if (!AGGREGATES.includes(fn as Measure['fn'])) throw invalidParameter('select', `select: ${fn}() is not an aggregate.`, AGGREGATES.map((a) => `${a}()`));
  if (column !== undefined) {
    const type = QUERYABLE_COLUMNS.get(column);
    if (!type) throw invalidParameter('select', `select: unknown column ${JSON.stringify(column)}.${didYouMean(column, COLUMN_NAMES)}`, COLUMN_NAMES);
    if (fn !== 'count' && type !== 'integer' && type !== 'number') {
      throw invalidParameter('select', `select: ${fn}() takes a numeric column; ${column} is ${type}.`, COLUMN_NAMES.filter((c) => ['integer', 'number'].includes(QUERYABLE_COLUMNS.get(c) ?? '')));
    }
  } else if (fn !== 'count') {
    throw invalidParameter('select', `select: ${fn}() needs a column, e.g. dep_delay.${fn}().`);
  }
  const name = alias ?? fn ?? '';
  if (!ALIAS.test(name) || QUERYABLE_COLUMNS.has(name.toLowerCase())) {
    throw invalidParameter('select', `select: alias ${JSON.stringify(name)} must be a letter or _ then letters, digits or _, and not a column name (in any case).`);
  }
  return { fn: fn as Measure['fn'], column: column ?? null, alias: name };
}

function parseSelect(text: string | undefined): Selection {
  const all = COLUMNS.map((c) => c.name);
  if (text === undefined) return { plain: all, measures: [], columns: all };
  const plain = new Set<string>();
  const measures: Measure[] = [];
  const columns: string[] = [];
  for (const item of text.split(',').map((s) => s.trim())) {
    const names = item === '*' ? all : QUERYABLE_COLUMNS.has(item) ? [item] : [];
    const measure = names.length ? undefined : parseMeasure(item);
    if (measure) {
      if (columns.some((c) => c.toLowerCase() === measure.alias.toLowerCase())) throw invalidParameter('select', `select: two aggregates are named ${measure.alias}; give one an alias (name:${item}).`);
      measures.push(measure);
      columns.push(measure.alias);
    } else if (names.length) {
      for (const n of names) if (!plain.has(n)) plain.add(n), columns.push(n);
    } else {
      throw invalidParameter('select', `select: ${JSON.stringify(item)} is neither a column nor an aggregate like dep_delay.avg().${didYouMean(item, COLUMN_NAMES)}`, ['*', ...COLUMN_NAMES]);
    }
  }
  if (measures.length && text.split(',').some((s) => s.trim() === '*')) throw invalidParameter('select', 'select: * cannot be grouped by; name the grouping columns.');
  return { plain: [...plain], measures, columns };
}

function parseOrder(text: string | undefined, sortable: readonly string[], tiebreaker: readonly string[]): OrderKey[] {
  const keys: OrderKey[] = [];
  for (const item of text === undefined ? [] : text.split(',')) {
    const [column = '', ...modifiers] = item.trim().split('.');
    if (!sortable.includes(column)) throw invalidParameter('order', `order: cannot sort by ${JSON.stringify(column)}.${didYouMean(column, sortable)}`, sortable);
    if (keys.some((k) => k.column === column)) throw invalidParameter('order', `order: ${column} is named twice.`);
    const direction = modifiers[0] === 'desc' || modifiers[0] === 'asc' ? modifiers.shift() : 'asc';
    const nulls = modifiers[0] === 'nullsfirst' || modifiers[0] === 'nullslast' ? modifiers.shift() : undefined;
    if (modifiers.length) throw invalidParameter('order', `order: ${JSON.stringify(item)} should be column[.asc|.desc][.nullsfirst|.nullslast].`, ['asc', 'desc', 'nullsfirst', 'nullslast']);
    keys.push({ column, direction: direction as OrderKey['direction'], nulls: nulls ? (nulls === 'nullsfirst' ? 'first' : 'last') : direction === 'desc' ? 'first' : 'last' });
  }
  for (const column of tiebreaker) if (!keys.some((k) => k.column === column)) keys.push({ column, direction: 'asc', nulls: 'last' });
  return keys;
}

function parseLimit(text: string | undefined, max: number): number {
  if (text === undefined) return Math.min(DEFAULT_LIMIT, max);
  if (!/^\d{1,9}$/.test(text) || Number(text) > max) throw invalidParameter('limit', `limit must be an integer from 0 to ${max}.`, [`0..${max}`]);
  return Number(text);
}

/** Parses and type-checks every parameter; throws a Problem(400) naming the first one at fault. */
export function parseQuery(params: URLSearchParams, options: GrammarOptions): ParsedQuery {
  const single = new Map<string, string>();
  const filters: Filter[] = [];
  const reserved = options.paged === false ? RESERVED.filter((p) => !PAGE_ONLY.includes(p)) : [...RESERVED];
  for (const [key, value] of params) {
    if (GATEWAY_CREDENTIAL_PARAMETERS.includes(key)) continue;
    if ((reserved as readonly string[]).includes(key)) {
      if (single.has(key)) throw invalidParameter(key, `${key} is given more than once.`);
      single.set(key, value);
    } else if (QUERYABLE_COLUMNS.has(key)) {
      filters.push(parseFilter(key, value));
    } else {
      const hint = didYouMean(key, [...reserved, ...COLUMN_NAMES]);
      throw invalidParameter(key, `Unknown parameter ${JSON.stringify(key)}: expected a column to filter on or one of ${reserved.join(', ')}.${hint}`, [...reserved, ...COLUMN_NAMES]);
    }
  }
  for (const bound of ['from', 'to'] as const) {
    const text = single.get(bound);
    if (text !== undefined) filters.push({ column: PARTITION_COLUMN, op: bound === 'from' ? 'gte' : 'lte', value: typed(bound, text, 'date') });
  }
  const from = single.get('from');
  const to = single.get('to');
  if (from !== undefined && to !== undefined && from > to) throw invalidParameter('to', `to (${to}) is before from (${from}).`);

  const selection = parseSelect(single.get('select'));
  const aggregate = selection.measures.length ? { groupBy: selection.plain, measures: selection.measures } : undefined;
  const order = aggregate
    ? parseOrder(single.get('order'), [...aggregate.groupBy, ...aggregate.measures.map((m) => m.alias)], aggregate.groupBy)
    : parseOrder(single.get('order'), COLUMN_NAMES, TIEBREAKER);

  const spec: QuerySpec = { select: selection.plain, filters, order, limit: parseLimit(single.get('limit'), options.maxLimit ?? MAX_LIMIT) };
  if (aggregate) spec.aggregate = aggregate;

  const cursor = single.get('cursor');
  if (cursor !== undefined) {
    if (aggregate) throw invalidParameter('cursor', 'cursor: aggregate results are not paginated by cursor; raise limit or narrow the filters.');
    spec.after = decodeCursor(cursor, spec, options.cursorSecret);
  }

  const count = single.get('count');
  if (count !== undefined && count !== 'exact') throw invalidParameter('count', 'count takes exact.', ['exact']);
  const format = single.get('format');
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw invalidParameter('format', `format: ${JSON.stringify(format)} is not supported.`, FORMATS);

  const parsed: ParsedQuery = { spec, columns: selection.columns, count: count === 'exact' };
  if (format !== undefined) parsed.format = format as Format;
  return parsed;
}
