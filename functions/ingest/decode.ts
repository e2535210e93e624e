/** Content codings an upload may arrive in: gzip, on the whole request or on one part. */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Problem } from '../core/problem.js';
import type { ByteBudget } from './limits.js';

const GZIP_TYPES = new Set(['application/gzip', 'application/x-gzip']);

/** A part is gzip when it says so by type or by name (`flights.csv.gz`). */
export const isGzipPart = (mimeType: string, fileName: string | undefined): boolean =>
  GZIP_TYPES.has(mimeType.toLowerCase()) || /\.gz$/i.test(fileName ?? '');

export const isGzipType = (mimeType: string): boolean => GZIP_TYPES.has(mimeType);

/** Whether the whole body is gzip-coded; any coding but gzip and identity is refused. */
export function requestIsGzip(headers: IncomingHttpHeaders): boolean {
  const codings = (headers['content-encoding'] ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== 'identity');
  if (codings.length === 0) return false;
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return true;
  throw new Problem(415, 'unsupported-encoding', 'Unsupported Content-Encoding', `Only gzip is accepted; got ${headers['content-encoding']}.`, {
    accepted: ['gzip', 'identity'],
  });
}

/** Gunzip, metered against the request's decompressed-bytes budget so a zip bomb stops at the limit. */
export const gunzip = (budget: ByteBudget): Transform[] => [createGunzip(), budget.meter()];

/** zlib reports a corrupt or truncated stream with a Z_* code. */
export const isGzipError = (e: unknown): boolean => typeof (e as { code?: unknown })?.code === 'string' && (e as { code: string }).code.startsWith('Z_');

/** The two bytes every gzip member starts with (RFC 1952); no CSV header can. */
const isGzipMagic = (head: Buffer): boolean => head[0] === 0x1f && head[1] === 0x8b;

/**
 * Refuses a file still gzip after the decoding its request declared, from its
 * first two bytes: it would otherwise be read as a header of binary garbage.
 */
export const undeclaredGzipIn = (head: Buffer): Problem | undefined => (isGzipMagic(head) ? undeclaredGzip() : undefined);

const undeclaredGzip = (): Problem =>
  new Problem(415, 'undeclared-gzip', 'Undeclared gzip', 'This is gzip, but it was not declared so: send it with Content-Encoding: gzip, as Content-Type application/gzip, or as a part named *.csv.gz.', {
    accepted: ['Content-Encoding: gzip', 'application/gzip', '*.csv.gz'],
  });

/** Passes the file through once its first two bytes show it is not gzip (undeclaredGzipIn). */
export function refuseUndeclaredGzip(): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      if (!head) return done(null, chunk);
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      if (head.length < 2) return done();
      const first = head;
      head = undefined;
      done(undeclaredGzipIn(first) ?? null, first);
    },
    flush(done: TransformCallback) {
      done(null, head?.length ? head : undefined);
    },
  });
}
