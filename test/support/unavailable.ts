/**
 * Injected overload for the REST fakes: the next requests that match answer
 * 503 Service Unavailable with a Retry-After header and the API's error body,
 * and do nothing else, as GCS and BigQuery do when a backend is overloaded.
 * What the official clients then do (retry or give up) is what tests see.
 */
import type http from 'node:http';

/** What a request is matched on: its method, its path as sent, its query parameters. */
export interface UnavailableRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

export interface UnavailableOptions {
  /** Seconds in the Retry-After header (neither official client reads it; a careful HTTP client would). */
  retryAfterSeconds?: number;
  /** Which requests fail; every request by default. */
  match?: (request: UnavailableRequest) => boolean;
}

export class Unavailable {
  /** Requests answered 503 since the last failNext. */
  answered = 0;
  private remaining = 0;
  private options: UnavailableOptions = {};

  /** The next `count` matching requests answer 503 (and `answered` counts from 0 again). */
  failNext(count: number, options: UnavailableOptions = {}): void {
    this.remaining = count;
    this.answered = 0;
    this.options = options;
  }

  /** Answers 503 and returns true if this request is one of those to fail. */
  intercept(request: UnavailableRequest, res: http.ServerResponse): boolean {
    if (this.remaining <= 0 || !(this.options.match?.(request) ?? true)) return false;
    this.remaining -= 1;
    this.answered += 1;
    const message = 'The service is currently unavailable.';
    const text = JSON.stringify({ error: { code: 503, message, errors: [{ domain: 'global', reason: 'backendError', message }], status: 'UNAVAILABLE' } });
    res.writeHead(503, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), 'retry-after': String(this.options.retryAfterSeconds ?? 1) });
    res.end(text);
    return true;
  }
}
