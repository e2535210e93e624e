/**
 * CORS for browser clients: off unless origins are configured (`CORS_ORIGINS`),
 * then for those origins only, preflights included. The local gateway and the
 * cloud's HTTP functions (functions/index.ts) apply the same policy.
 */
import cors from 'cors';
import type { Request, RequestHandler, Response } from 'express';

/** Headers a browser script may read: where things went, paging, retry hints, replays. */
const EXPOSED = ['Location', 'Link', 'X-Total-Count', 'Retry-After', 'Idempotent-Replayed'];

/** The middleware for these origins; undefined when the list is empty (no CORS headers at all). */
export function corsFor(origins: readonly string[]): RequestHandler | undefined {
  if (origins.length === 0) return undefined;
  return cors({ origin: [...origins], exposedHeaders: EXPOSED, maxAge: 600 });
}

/**
 * `handler` behind CORS: a preflight the policy answers ends there; any other
 * request gets the CORS headers and goes on to the handler.
 */
export function withCors(origins: readonly string[], handler: (req: Request, res: Response) => Promise<void>): (req: Request, res: Response) => Promise<void> {
  const policy = corsFor(origins);
  if (!policy) return handler;
  return async (req, res) => {
    await new Promise<void>((resolve, reject) => {
      // The cors package ends a preflight it answers without calling next.
      res.once('finish', resolve);
      policy(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
    });
    if (!res.headersSent) await handler(req, res);
  };
}
