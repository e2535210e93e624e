/** HTTP entry of the query function: `GET /getdata`, `GET /schema` and `GET /health` (and HEAD of each). */
import type { Request, Response } from 'express';
import { isRead, methodNotAllowed, queryParams, READ_METHODS, sendError } from '../core/http.js';
import { Problem } from '../core/problem.js';
import type { QuerySpec } from '../core/query-spec.js';
import type { Runtime } from '../runtime.js';
import { pageCursor } from './cursor.js';
import { CONTENT_TYPES, chooseFormat, presentRow, project, serialize, type Format } from './formats.js';
import { MAX_LIMIT, parseQuery } from './grammar.js';
import { health } from './health.js';
import { describeSchema } from './schema-doc.js';

/** The same query string with `cursor` replaced: the next page's URL. */
function nextUrl(req: Request, cursor: string): string {
  const params = queryParams(req);
  params.set('cursor', cursor);
  return `${req.path}?${params.toString()}`;
}

/** Parameters that shape a page rather than the result: an export takes the rest unchanged. */
const PAGE_ONLY = ['cursor', 'limit', 'count', 'format'];

function tooLarge(req: Request, cap: number): Problem {
  const params = queryParams(req);
  for (const p of PAGE_ONLY) params.delete(p);
  const href = `/exports${params.size ? `?${params}` : ''}`;
  return new Problem(
    413,
    'response-too-large',
    'Response too large',
    `This page would exceed ${cap} bytes, the most one response may carry. Ask for fewer rows (limit) or columns (select), or export the whole result: POST ${href}.`,
    { maxBytes: cap, export: { method: 'POST', href } },
  );
}

/**
 * The page as one body, counted as it is serialized and refused before a byte
 * is sent if it would pass the cap: the cloud cuts larger responses off, and a
 * truncated body would look like a complete page.
 */
async function inlineBody(chunks: AsyncIterable<string>, cap: number, req: Request): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    const bytes = Buffer.from(chunk);
    size += bytes.length;
    if (size > cap) throw tooLarge(req, cap);
    parts.push(bytes);
  }
  return Buffer.concat(parts, size);
}

async function* pageChunks(format: Format, rows: Record<string, unknown>[], columns: string[], next: string | null, total: number | undefined): AsyncGenerator<string> {
  if (format !== 'json') return yield* serialize(format, rows, columns);
  yield JSON.stringify({ rows: rows.map((r) => project(r, columns)), next, ...(total !== undefined ? { count: total } : {}) });
}

/**
 * What the warehouse is asked for a page: one row more than the page tells
 * whether a next page exists, so the last page carries no cursor, and whether
 * an aggregate has more groups than `limit`.
 */
export const probeSpec = (spec: QuerySpec): QuerySpec => ({ ...spec, limit: spec.limit + 1 });

/**
 * Grouped results are not paged (a cursor has no keyset over aggregates):
 * rather than cut them off silently at `limit`, the request is refused.
 */
function tooManyGroups(limit: number, req: Request): Problem {
  const params = queryParams(req);
  for (const p of PAGE_ONLY) params.delete(p);
  const raise = limit < MAX_LIMIT ? `raise limit (up to ${MAX_LIMIT}), ` : '';
  return new Problem(
    400,
    'too-many-groups',
    'Too many groups',
    `The result has more than ${limit} groups and grouped results are not paged: ${raise}narrow the filters, or export it: POST /exports${params.size ? `?${params}` : ''}.`,
    { parameter: 'limit', limit, allowed: limit < MAX_LIMIT ? [`${limit + 1}..${MAX_LIMIT}`] : [] },
  );
}

async function getdata(rt: Runtime, req: Request, res: Response): Promise<void> {
  const q = parseQuery(queryParams(req), { cursorSecret: rt.cursorSecret });
  const format = chooseFormat(q.format, req.headers.accept);
  const [result, total] = await Promise.all([rt.warehouse.query(probeSpec(q.spec)), q.count ? rt.warehouse.count(q.spec) : undefined]);
  if (q.spec.aggregate && result.rows.length > q.spec.limit) throw tooManyGroups(q.spec.limit, req);
  const rows = result.rows.slice(0, q.spec.limit);
  const cursor = result.rows.length > q.spec.limit ? pageCursor(q.spec, rows, rt.cursorSecret) : undefined;
  const next = cursor ? nextUrl(req, cursor) : null;
  const body = await inlineBody(pageChunks(format, rows.map(presentRow), q.columns, next, total), rt.config.maxInlineResponseBytes, req);
  if (next) res.setHeader('Link', `<${next}>; rel="next"`);
  if (total !== undefined) res.setHeader('X-Total-Count', String(total));
  res.type(CONTENT_TYPES[format]);
  if (format === 'csv') res.attachment('flights.csv');
  res.send(body);
}

export function queryHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      if (!isRead(req)) throw methodNotAllowed(req, READ_METHODS);
      if (req.path === '/schema') {
        res.json(describeSchema());
        return;
      }
      if (req.path === '/health') {
        const report = await health(rt);
        res.status(report.status === 'ok' ? 200 : 503).setHeader('Cache-Control', 'no-store');
        res.json(report);
        return;
      }
      await getdata(rt, req, res);
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
