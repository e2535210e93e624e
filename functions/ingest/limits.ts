/** Size limits on the bytes of one request, enforced while they stream. */
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../core/config.js';
import { Problem } from '../core/problem.js';

export type SizeLimited = 'request body' | 'decompressed CSV';

export function tooLarge(what: SizeLimited, limit: number, profile: Config['profile']): Problem {
  const largeFiles =
    profile === 'cloud'
      ? ' Requests through API Gateway are capped at 32 MB: send larger files through the large-file path (POST /uploads: a signed URL straight to the bucket) instead.'
      : ' Send it through POST /uploads (a signed, resumable URL straight to the bucket), split the file, or gzip it.';
  return new Problem(413, 'too-large', 'Payload Too Large', `The ${what} is larger than the limit of ${limit} bytes.${largeFiles}`, { limit, largeFiles: { method: 'POST', href: '/uploads' } });
}

/**
 * The declared length is checked before a byte is read. A body without one
 * (chunked) is accepted and counted as it streams, so no 411 is needed.
 */
export function declaredLengthProblem(headers: IncomingHttpHeaders, limit: number, profile: Config['profile']): Problem | undefined {
  const declared = Number(headers['content-length']);
  return Number.isFinite(declared) && declared > limit ? tooLarge('request body', limit, profile) : undefined;
}

/** An allowance of bytes shared by every stream it meters (one request's files), failing with `exceeded` once spent. */
export class ByteBudget {
  used = 0;
  constructor(
    readonly limit: number,
    private readonly exceeded: () => Problem,
  ) {}

  meter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        this.used += chunk.length;
        done(this.used > this.limit ? this.exceeded() : null, chunk);
      },
    });
  }
}
