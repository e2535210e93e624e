/** HTTP entry of the query function: `GET /getdata` and `GET /schema`. */
import type { Request, Response } from 'express';
import { methodNotAllowed, sendError } from '../core/http.js';
import type { QuerySpec } from '../core/query-spec.js';
import type { Runtime } from '../runtime.js';
import { pageCursor } from './cursor.js';
import { CONTENT_TYPES, chooseFormat, project, serialize } from './formats.js';
import { parseQuery } from './grammar.js';
import { describeSchema } from './schema-doc.js';

/** The same query string with `cursor` replaced: the next page's URL. */
function nextUrl(req: Request, cursor: string): string {
  const params = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
  params.set('cursor', cursor);
  return `${req.path}?${params.toString()}`;
}

/**
 * What the warehouse is asked for a page: one row more than the page tells
 * whether a next page exists, so the last page carries no cursor. Aggregates
 * take no cursor and run as asked.
 */
export const probeSpec = (spec: QuerySpec): QuerySpec => (spec.aggregate ? spec : { ...spec, limit: spec.limit + 1 });

async function getdata(rt: Runtime, req: Request, res: Response): Promise<void> {
  const q = parseQuery(new URLSearchParams(req.originalUrl.split('?')[1] ?? ''), { cursorSecret: rt.cursorSecret });
  const format = chooseFormat(q.format, req.headers.accept);
  const [result, total] = await Promise.all([rt.warehouse.query(probeSpec(q.spec)), q.count ? rt.warehouse.count(q.spec) : undefined]);
  const rows = result.rows.slice(0, q.spec.limit);
  const cursor = result.rows.length > q.spec.limit ? pageCursor(q.spec, rows, rt.cursorSecret) : undefined;
  const next = cursor ? nextUrl(req, cursor) : null;
  if (next) res.setHeader('Link', `<${next}>; rel="next"`);
  if (total !== undefined) res.setHeader('X-Total-Count', String(total));
  if (format === 'json') {
    res.json({ rows: rows.map((r) => project(r, q.columns)), next, ...(total !== undefined ? { count: total } : {}) });
    return;
  }
  res.type(CONTENT_TYPES[format]);
  if (format === 'csv') res.attachment('flights.csv');
  for await (const chunk of serialize(format, rows, q.columns)) res.write(chunk);
  res.end();
}

export function queryHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
      if (req.path === '/schema') {
        res.json(describeSchema());
        return;
      }
      await getdata(rt, req, res);
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
