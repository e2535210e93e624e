/** The small HTTP vocabulary every handler shares: problem responses and the request's byte source. */
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { StoreUnavailableError, WarehouseUnavailableError } from './ports.js';
import { PROBLEM_CONTENT_TYPE, Problem, isProblem } from './problem.js';

/** The client went away before its request was complete. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('the client closed the connection before the request was complete');
  }
}

export interface BodySource {
  /** The platform has already removed any Content-Encoding (functions-framework's body-parser inflates gzip). */
  decoded: boolean;
  /** The platform's copy of the whole body, when it has read it already. */
  whole?: Buffer;
  /** The body as a stream of our own, made on first use. */
  stream(): Readable;
  /** The body at once, for one small enough to hold; each chunk's size goes to `take` as it arrives, and a problem it returns ends the read. */
  readWhole(take: (bytes: number) => Error | undefined): Promise<Buffer>;
  /** Ends the read under way, or the one to come, with `e`. */
  destroy(e: Error): void;
}

/** A request that fails before its body is complete does so because its client left (Node's `ECONNRESET` "aborted"). */
const requestError = (req: Request, e: Error): Error => (req.complete ? e : new ClientClosedError());

/**
 * The live request piped into a stream of our own, so that tearing down a
 * failed upload never destroys the request itself: that would reset the
 * socket before the client reads the answer.
 */
function ownStream(req: Request): Readable {
  const stream = new PassThrough();
  req.on('error', (e) => stream.destroy(requestError(req, e)));
  req.on('close', () => {
    if (!req.complete) stream.destroy(new ClientClosedError());
  });
  req.pipe(stream);
  return stream;
}

/** The live request's chunks gathered; `stop` is what ends the read early (it stops listening: discardUnreadBody takes the rest). */
function gather(req: Request, take: (bytes: number) => Error | undefined, onStop: (stop: (e: Error) => void) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const unlisten = (): void => void req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    const stop = (e: Error): void => {
      unlisten();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      const over = take(chunk.length);
      if (over) stop(over);
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      unlisten();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (e: Error): void => stop(requestError(req, e));
    const onClose = (): void => {
      if (!req.complete) stop(new ClientClosedError());
    };
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
    onStop(stop);
  });
}

/**
 * Under functions-framework the body is already buffered in `rawBody`; behind
 * the local gateway it is the live request, read as a stream of our own or,
 * when small, gathered whole with no stream between.
 */
export function bodySource(req: Request): BodySource {
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  let stream: Readable | undefined;
  let stop: ((e: Error) => void) | undefined;
  let failed: Error | undefined;
  return {
    decoded: raw !== undefined,
    ...(raw ? { whole: raw } : {}),
    stream: () => {
      stream ??= raw ? Readable.from([raw]) : ownStream(req);
      if (failed) stream.destroy(failed);
      return stream;
    },
    readWhole: (take) => {
      if (failed) return Promise.reject(failed);
      if (!raw) return gather(req, take, (s) => (stop = s));
      const over = take(raw.length);
      return over ? Promise.reject(over) : Promise.resolve(raw);
    },
    destroy: (e) => {
      failed ??= e;
      stream?.destroy(e);
      stop?.(e);
    },
  };
}

const LINGER_MS = 2000;

/**
 * Once a request is answered before its body was read: discard the rest, so
 * the client can finish sending and read the answer instead of meeting a
 * reset, and keep the connection for its next request. A client that keeps
 * sending beyond LINGER_MS is cut off.
 */
export function discardUnreadBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  req.unpipe();
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
}

/**
 * A JSON answer to a write, written as it is: Express's `res.json` would hash the body for an ETag that
 * no client revalidates a POST against, and hand Node the headers and the body as two buffers. A string
 * body goes out with the headers in one socket write.
 */
export function sendJson(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(json)) });
  res.end(json);
}

export function sendProblem(res: Response, problem: Problem): void {
  if (res.headersSent) return void res.destroy();
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem.toJSON()));
}

/** Seconds a client is asked to wait when a service behind the API stayed unavailable through its client's retries. */
export const UNAVAILABLE_RETRY_SECONDS = 5;

/** The error and its causes, outermost first. */
export function* causes(e: unknown): Generator<unknown> {
  for (let c = e; c !== undefined; c = (c as Error | undefined)?.cause) yield c;
}

/** The store or the warehouse was unavailable (an outage, worth retrying later), whatever wraps it. */
export const unavailable = (e: unknown): boolean => [...causes(e)].some((c) => c instanceof StoreUnavailableError || c instanceof WarehouseUnavailableError);

/**
 * Client faults become their problem; an outage of the store or the warehouse is a 503 the client
 * can retry after Retry-After, not a bug; anything else is logged and answered with a plain 500.
 */
export function sendError(res: Response, error: unknown, log: Logger): void {
  if (isProblem(error)) return sendProblem(res, error);
  if (unavailable(error)) {
    log.warn({ err: error }, 'a service behind the API is unavailable');
    if (!res.headersSent) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_SECONDS));
    return sendProblem(res, new Problem(503, 'unavailable', 'Service Unavailable', `A service behind the API is unavailable right now. Retry in ${UNAVAILABLE_RETRY_SECONDS} s.`));
  }
  log.error({ err: error }, 'unhandled error');
  sendProblem(res, new Problem(500, 'internal', 'Internal Server Error', 'The server failed to handle the request; it has been logged.'));
}

/** HEAD is answered wherever GET is, with GET's headers and no body (Express drops the body). */
export const READ_METHODS = ['GET', 'HEAD'];
export const isRead = (req: Request): boolean => READ_METHODS.includes(req.method);

export const methodNotAllowed = (req: Request, allowed: string[]): Problem =>
  new Problem(405, 'method-not-allowed', 'Method Not Allowed', `${req.method} is not allowed here; use ${allowed.join(' or ')}.`, { allowed });

/**
 * The query string as the grammar reads it: repeated parameters kept in order,
 * nothing turned into nested objects (Express's own `req.query` parser would).
 * A second `?` is refused: it is nearly always a query appended to a URL that
 * had one, and reading on or stopping there would both guess.
 */
export function queryParams(req: Request): URLSearchParams {
  const [, query = '', ...more] = req.originalUrl.split('?');
  if (more.length) {
    throw new Problem(400, 'invalid-parameter', 'Invalid query parameter', 'The URL has a second "?": join parameters with "&", and write a literal ? in a value as %3F.');
  }
  return new URLSearchParams(query);
}

export const notFound = (what: string): Problem => new Problem(404, 'not-found', 'Not Found', what);
