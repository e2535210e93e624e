/** HTTP entry of the query function: `GET /getdata`. */
import type { Request, Response } from 'express';
import { methodNotAllowed, sendError } from '../core/http.js';
import { Problem } from '../core/problem.js';
import type { QuerySpec } from '../core/query-spec.js';
import { COLUMNS } from '../core/schema.js';
import type { Runtime } from '../runtime.js';

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 10_000;

function parseLimit(raw: unknown): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new Problem(400, 'invalid-parameter', 'Invalid parameter', `limit must be an integer from 1 to ${MAX_LIMIT}.`, { parameter: 'limit' });
  }
  return n;
}

export function queryHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
      const select = COLUMNS.map((c) => c.name);
      const spec: QuerySpec = {
        select,
        filters: [],
        order: ['_source_object', '_source_generation', '_source_line'].map((column) => ({ column, direction: 'asc', nulls: 'last' })),
        limit: parseLimit(req.query.limit),
      };
      const result = await rt.warehouse.query(spec);
      const rows = result.rows.map((row) => Object.fromEntries(select.map((c) => [c, row[c]])));
      res.json({ rows, next: null });
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
