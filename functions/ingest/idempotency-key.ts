/**
 * The Idempotency-Key header (IETF draft-ietf-httpapi-idempotency-key-header):
 * a request repeated with the same key gets the first request's result instead
 * of doing the work again, and a key reused with another payload is refused
 * with 422. Keys are scoped to the caller (identity.ts). The claim is an
 * object created with if-generation-match=0, so racing repeats agree on one
 * owner; a failed owner releases the key, so a corrected retry may reuse it;
 * an owner that died holds it only for its lease (core/uploads.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Problem } from '../core/problem.js';
import type { IdempotencyIndex } from '../core/uploads.js';
import { inProgress } from './commit.js';
import { callerIdentity } from './identity.js';

/**
 * The request's key, scoped to its caller; undefined when it has none. A key is an opaque
 * string of visible ASCII (an RFC 8941 string, quoted or not), at most 255 characters.
 */
export function idempotencyKey(req: { headers: IncomingHttpHeaders; url?: string }): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = String(raw).trim().replace(/^"(.*)"$/, '$1');
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new Problem(400, 'invalid-idempotency-key', 'Invalid Idempotency-Key', 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.');
  }
  // A newline cannot occur in either part, so no two (caller, key) pairs make the same id.
  return `${callerIdentity(req)}\n${key}`;
}

export const keyReused = (): Problem =>
  new Problem(
    422,
    'idempotency-key-reused',
    'Idempotency-Key reused',
    'This Idempotency-Key was first used with a different payload; send a new key for a new request.',
  );

/**
 * Runs `work` once per key (every time when there is none); a repeat gets the first result with
 * `replayed`, if `samePayload` says the repeat carries the first request's payload, else a 422.
 */
export async function oncePerKey<T>(
  index: IdempotencyIndex<T>,
  key: string | undefined,
  owner: string,
  work: () => Promise<T>,
  samePayload: (first: T) => Promise<boolean> = async () => true,
): Promise<{ result: T; replayed: boolean }> {
  if (key === undefined) return { result: await work(), replayed: false };
  const claim = await index.claim('key', key, owner);
  if (!claim.won) {
    if (!claim.entry.result) throw inProgress('An upload with this Idempotency-Key');
    if (!(await samePayload(claim.entry.result))) throw keyReused();
    return { result: claim.entry.result, replayed: true };
  }
  try {
    const result = await work();
    await index.complete('key', key, claim, result);
    return { result, replayed: false };
  } catch (e) {
    await index.release('key', key, claim);
    throw e;
  }
}
