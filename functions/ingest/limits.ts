/** Size limits on the bytes of one request, enforced while they stream. */
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Config, IngestLimits } from '../core/config.js';
import { Problem } from '../core/problem.js';

export type SizeLimited = 'request body' | 'decompressed CSV';

export function tooLarge(what: SizeLimited, limit: number, profile: Config['profile']): Problem {
  const largeFiles =
    profile === 'cloud'
      ? ' Requests through API Gateway are capped at 32 MB: send larger files through the large-file path (POST /uploads: a signed URL straight to the bucket) instead.'
      : ' Send it through POST /uploads (a signed, resumable URL straight to the bucket), split the file, or gzip it.';
  return new Problem(413, 'too-large', 'Payload Too Large', `The ${what} is larger than the limit of ${limit} bytes.${largeFiles}`, { limit, largeFiles: { method: 'POST', href: '/uploads' } });
}

/** The request's Content-Length; undefined for a chunked body. */
export function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const declared = Number(headers['content-length'] ?? NaN);
  return Number.isFinite(declared) ? declared : undefined;
}

/**
 * The declared length is checked before a byte is read. A body without one
 * (chunked) is accepted and counted as it streams, so no 411 is needed.
 */
export function declaredLengthProblem(headers: IncomingHttpHeaders, limit: number, profile: Config['profile']): Problem | undefined {
  const declared = declaredLength(headers);
  return declared !== undefined && declared > limit ? tooLarge('request body', limit, profile) : undefined;
}

/**
 * An allowance of bytes shared by every stream it meters (one request's
 * files), failing with `exceeded` once spent. The allowance is asked for at
 * each chunk, so it may grow with another count.
 */
export class ByteBudget {
  used = 0;
  constructor(
    private readonly limit: () => number,
    private readonly exceeded: () => Problem,
  ) {}

  /** Counts `bytes` more: the problem once the allowance is spent. */
  take(bytes: number): Problem | undefined {
    this.used += bytes;
    return this.used > this.limit() ? this.exceeded() : undefined;
  }

  meter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => done(this.take(chunk.length) ?? null, chunk),
    });
  }
}

/** What any gzip body may expand to regardless of the ratio, so a small file's header overhead never counts against it. */
export const DECOMPRESSION_FLOOR = 1 << 20;

/**
 * The decompressed bytes a request may produce: the absolute bound, and
 * `ratio` times the bytes received so far, checked as each chunk is inflated
 * and before it goes on to staging, so a bomb is refused within its first
 * kilobytes instead of after writing the absolute bound to staging.
 */
export function decompressedBudget(wire: ByteBudget, limits: Pick<IngestLimits, 'maxDecompressedBytes' | 'maxDecompressionRatio'>, profile: Config['profile']): ByteBudget {
  const { maxDecompressedBytes: absolute, maxDecompressionRatio: ratio } = limits;
  const allowance = (): number => Math.min(absolute, Math.max(DECOMPRESSION_FLOOR, ratio * wire.used));
  const budget: ByteBudget = new ByteBudget(allowance, () =>
    budget.used > absolute
      ? tooLarge('decompressed CSV', absolute, profile)
      : new Problem(
          413,
          'too-large',
          'Payload Too Large',
          `The gzip body expands to more than ${ratio} times the bytes sent (${budget.used} decompressed bytes from ${wire.used}): refused as a likely zip bomb. Send it uncompressed, or through POST /uploads.`,
          { limit: ratio, decompressedBytes: budget.used, receivedBytes: wire.used, largeFiles: { method: 'POST', href: '/uploads' } },
        ),
  );
  return budget;
}

/** Where an upload's body stands, as the rate watch asks at the end of each window. */
export type BodyState = 'complete' | 'ours' | 'client';

/**
 * Fails an upload whose body brings fewer than the minimum rate's bytes in
 * two `uploadStallMs` windows in a row that each end with us waiting for the
 * client. A window ending with bytes waiting for us (`ours`: our own pipeline
 * holds them back) is not the client's fault, and once the body is `complete`
 * the time is ours. The state is a snapshot at the window's end, so one slow
 * window can be ours (a busy event loop); two in a row is the client.
 * Eight clients sending a byte a second would otherwise hold every upload slot
 * until the request timeout. Returns the function that stops watching.
 */
export function watchUploadRate(
  wire: ByteBudget,
  limits: Pick<IngestLimits, 'uploadStallMs' | 'minUploadBytesPerSecond'>,
  body: () => BodyState,
  tooSlow: (problem: Problem) => void,
): () => void {
  const { uploadStallMs: window, minUploadBytesPerSecond: rate } = limits;
  const least = Math.ceil((rate * window) / 1000);
  let before = wire.used;
  let slowWindows = 0;
  const timer = setInterval(() => {
    const state = body();
    if (state === 'complete') return clearInterval(timer);
    const brought = wire.used - before;
    before = wire.used;
    slowWindows = state === 'client' && brought < least ? slowWindows + 1 : 0;
    if (slowWindows < 2) return;
    clearInterval(timer);
    tooSlow(
      new Problem(408, 'too-slow', 'Request Timeout', `The upload brought ${brought} bytes in each of the last two ${window / 1000} s windows or fewer; at least ${rate} bytes/s are required.`, {
        minBytesPerSecond: rate,
      }),
    );
  }, window);
  return () => clearInterval(timer);
}
