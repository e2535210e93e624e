/** The /getdata parameters of openapi/openapi.yaml, derived from the schema module and the grammar. */
import { parseDocument } from 'yaml';
import { QUERYABLE_COLUMNS } from '../core/schema.js';
import { AGGREGATES, DEFAULT_LIMIT, MAX_LIMIT, operatorsFor } from './grammar.js';
import { FORMATS } from './formats.js';

const query = (name: string, description: string, extra: Record<string, unknown> = {}) => ({ name, in: 'query', type: 'string', required: false, description, ...extra });

export function getdataParameters(): Record<string, unknown>[] {
  const columns = [...QUERYABLE_COLUMNS.keys()];
  return [
    query('select', `Columns to return, comma-separated (default: every data column). Aggregates: ${AGGREGATES.map((a) => `col.${a}()`).join(', ')}, count(); plain columns then group.`),
    query('order', 'Sort keys, comma-separated: col, col.desc, col.asc.nullsfirst. A unique tiebreaker is always appended.'),
    { name: 'limit', in: 'query', type: 'integer', minimum: 0, maximum: MAX_LIMIT, default: DEFAULT_LIMIT, required: false, description: 'Rows per page.' },
    query('cursor', 'Opaque cursor from the previous page’s `next`; valid only with the same order and filters.'),
    query('count', 'exact: also return the number of matching rows (body `count`, header X-Total-Count).', { enum: ['exact'] }),
    query('format', 'Response format; otherwise the Accept header decides.', { enum: [...FORMATS] }),
    query('from', 'First flight date, inclusive (YYYY-MM-DD).', { format: 'date' }),
    query('to', 'Last flight date, inclusive (YYYY-MM-DD).', { format: 'date' }),
    ...columns.map((c) => {
      const type = QUERYABLE_COLUMNS.get(c)!;
      return query(c, `Filter on ${c} (${type}): ${c}=<op>.<value> with op one of ${operatorsFor(type).join(', ')}; prefix not. to negate; is.null / is.not_null.`);
    }),
  ];
}

/** POST /exports: the same grammar, without what only a page has (see exports/request.ts). */
export function exportParameters(): Record<string, unknown>[] {
  return getdataParameters()
    .filter((p) => p.name !== 'cursor' && p.name !== 'count')
    .map((p) => {
      if (p.name === 'limit') return { name: 'limit', in: 'query', type: 'integer', minimum: 0, required: false, description: 'At most this many rows; by default the whole result.' };
      if (p.name === 'format') return { ...p, description: 'Exports are gzip CSV.', enum: ['csv'] };
      return p;
    });
}

/** `spec` with the /getdata and /exports parameters replaced by the derived ones; comments and the rest kept. */
export function withGetdataParameters(spec: string): string {
  const doc = parseDocument(spec);
  doc.setIn(['paths', '/getdata', 'get', 'parameters'], doc.createNode(getdataParameters()));
  doc.setIn(['paths', '/exports', 'post', 'parameters'], doc.createNode(exportParameters()));
  return doc.toString({ lineWidth: 0 });
}
