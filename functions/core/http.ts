/** The small HTTP vocabulary every handler shares: problem responses and the request's byte source. */
import { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { PROBLEM_CONTENT_TYPE, Problem, isProblem } from './problem.js';

/** Under functions-framework the body is already buffered in `rawBody`; behind the local gateway it is the live stream. */
export function bodySource(req: Request): Readable {
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  return raw ? Readable.from([raw]) : req;
}

export function sendProblem(res: Response, problem: Problem): void {
  if (res.headersSent) return void res.destroy();
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem.toJSON()));
}

/** Client faults become their problem; anything else is logged and answered with a plain 500. */
export function sendError(res: Response, error: unknown, log: Logger): void {
  if (isProblem(error)) return sendProblem(res, error);
  log.error({ err: error }, 'unhandled error');
  sendProblem(res, new Problem(500, 'internal', 'Internal Server Error', 'The server failed to handle the request; it has been logged.'));
}

export const methodNotAllowed = (req: Request, allowed: string[]): Problem =>
  new Problem(405, 'method-not-allowed', 'Method Not Allowed', `${req.method} is not allowed here; use ${allowed.join(' or ')}.`, { allowed });

export const notFound = (what: string): Problem => new Problem(404, 'not-found', 'Not Found', what);
