/**
 * Counts and times every gateway request by operation (the spec path, so
 * `/uploads/{uploadId}` is one series) and status. A client that leaves
 * before the answer is finished is counted as 499, as proxies log it.
 */
import type { NextFunction, Request, Response } from 'express';
import { metrics } from './metrics.js';

/** Requests that matched no operation of the spec (storage routes, operators' routes, 404s). */
export const OTHER_ROUTE = 'other';

export function observeRequests(req: Request, res: Response, next: NextFunction): void {
  const end = metrics.requestDuration.startTimer();
  // A response emits 'close' after 'finish' too (Node 16 on), so this one listener sees every end.
  res.once('close', () => {
    const labels = { method: req.method, route: (res.locals.route as string | undefined) ?? OTHER_ROUTE, status: String(res.writableFinished ? res.statusCode : 499) };
    metrics.requests.inc(labels);
    end(labels);
  });
  next();
}
