import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/**
 * `bytes` random bytes as hex, from the CSPRNG 4 KiB at a time, each byte handed out once (as Node's
 * randomUUID does): a randomBytes call is a crypto job with an async resource of its own, 30-40 µs for
 * five bytes under the crash guard's async hooks, where a slice of the pool costs about 1 µs.
 */
export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes));
    used = 0;
  }
  used += bytes;
  return pool.toString('hex', used - bytes, used);
}

/** Upload ids sort by creation time (base-36 milliseconds), then 10 random hex digits. */
export function newUploadId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}${randomHex(5)}`;
}

export const UPLOAD_ID = /^[0-9a-z]{9}[0-9a-f]{10}$/;
