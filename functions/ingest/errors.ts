/** What a failed upload tells the client: every fault a client can cause maps to a 4xx problem. */
import { causes, ClientClosedError, UNAVAILABLE_RETRY_SECONDS } from '../core/http.js';
import { StoreUnavailableError } from '../core/ports.js';
import { Problem } from '../core/problem.js';
import { isGzipError } from './decode.js';
import { InvalidCsvError } from './validator.js';

function invalidCsv(e: InvalidCsvError): Problem {
  const first = e.faults[0];
  const where = first ? ` First at line ${first.line}${first.column ? `, column ${first.column}` : ''}: ${first.reason}.` : '';
  const [slug, title] = e.status === 413 ? ['too-large', 'Payload Too Large'] : ['invalid-csv', 'Invalid CSV'];
  return new Problem(e.status, slug, title, `The file has ${e.faultCount} fault(s) and was not stored.${where}`, {
    ...(e.fileName ? { file: e.fileName } : {}),
    errorCount: e.faultCount,
    errors: e.faults,
  });
}

/**
 * The client-facing outcome of a failure: a problem to answer with, `closed`
 * when the client is gone (nobody to answer), or undefined for our own fault.
 */
export function clientOutcome(e: unknown): Problem | 'closed' | undefined {
  if (e instanceof Problem) return e.status < 500 ? e : undefined;
  if (e instanceof InvalidCsvError) return invalidCsv(e);
  if (e instanceof ClientClosedError) return 'closed';
  if (isGzipError(e)) return new Problem(400, 'invalid-gzip', 'Invalid gzip', `The body is declared gzip but does not decompress: ${(e as Error).message}.`);
  return undefined;
}

/** Seconds a client should wait before retrying an upload refused for want of space. */
export const STORAGE_FULL_RETRY_SECONDS = 60;

/**
 * Not the client's fault, but not a crash either: the disk under the local bucket is full (or the
 * quota spent). The client is told to come back later (507, RFC 4918), nothing of its file kept.
 */
export const isStorageFull = (e: unknown): boolean => ['ENOSPC', 'EDQUOT'].includes((e as NodeJS.ErrnoException | undefined)?.code ?? '');

export function storageFullProblem(e: unknown): Problem | undefined {
  if (!isStorageFull(e)) return undefined;
  return new Problem(507, 'insufficient-storage', 'Insufficient Storage', `The server has no space to store the file right now; nothing of it was kept. Retry in ${STORAGE_FULL_RETRY_SECONDS} s.`);
}

export const malformedMultipart = (e: Error): Problem => new Problem(400, 'malformed-multipart', 'Malformed multipart body', e.message);

/**
 * The object store stayed unavailable through its client's own retries: not the client's fault and
 * not a crash. The client is told to come back (503 with Retry-After), nothing of its file kept.
 */
export function storeUnavailableProblem(e: unknown): Problem | undefined {
  if (![...causes(e)].some((c) => c instanceof StoreUnavailableError)) return undefined;
  return new Problem(503, 'unavailable', 'Service Unavailable', `The object store is unavailable right now; nothing of the file was kept. Retry in ${UNAVAILABLE_RETRY_SECONDS} s.`);
}
