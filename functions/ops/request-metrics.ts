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
  let done = false;
  const record = (status: number): void => {
    if (done) return;
    done = true;
    const labels = { method: req.method, route: (res.locals.route as string | undefined) ?? OTHER_ROUTE, status: String(status) };
    metrics.requests.inc(labels);
    end(labels);
  };
  res.once('finish', () => record(res.statusCode));
  res.once('close', () => record(res.writableFinished ? res.statusCode : 499));
  next();
}
