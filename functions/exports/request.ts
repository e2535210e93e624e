/**
 * POST /exports takes GET /getdata's query string, parsed by the same grammar,
 * minus what only makes sense for a page: an export is the whole result (no
 * cursor, no page-size default), always gzip CSV, and reports its row count
 * in its status.
 */
import type { ExportSpec } from '../core/query-spec.js';
import { parseQuery } from '../query/grammar.js';
import { invalidParameter } from '../query/values.js';

export interface ExportRequest {
  spec: ExportSpec;
  columns: string[];
}

/** The grammar's own bound on `limit` (nine digits); an export without `limit` has no LIMIT at all. */
const MAX_EXPORT_LIMIT = 999_999_999;

export function parseExportRequest(params: URLSearchParams, cursorSecret: string): ExportRequest {
  if (params.has('cursor')) throw invalidParameter('cursor', 'cursor: an export is the whole result; drop the cursor.');
  if (params.has('count')) throw invalidParameter('count', 'count: the export status reports the row count; drop count.');
  const format = params.get('format');
  if (format !== null && format !== 'csv') throw invalidParameter('format', `format: exports are gzip CSV; ${JSON.stringify(format)} is not offered.`, ['csv']);
  const withoutFormat = new URLSearchParams([...params].filter(([key]) => key !== 'format'));
  const parsed = parseQuery(withoutFormat, { cursorSecret, maxLimit: MAX_EXPORT_LIMIT, paged: false });
  const { limit, after: _none, ...spec } = parsed.spec;
  return { spec: params.has('limit') ? { ...spec, limit } : spec, columns: parsed.columns };
}
