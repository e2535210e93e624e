/** The body of POST /uploads: what the client is about to send straight to the bucket. */
import type { Request } from 'express';
import { Problem } from '../core/problem.js';
import { sanitizeFileName } from '../ingest/store-upload.js';

export interface UploadIntent {
  fileName?: string;
  size: number;
  contentType: string;
  sha256?: string;
}

/** CSV text, or gzipped CSV (validated through gunzip); anything else would fail after a long upload, so it is refused up front. */
export const SIGNED_CONTENT_TYPES = ['text/csv', 'application/csv', 'text/plain', 'application/gzip'] as const;

const MAX_BODY = 16 * 1024;

const invalid = (field: string, detail: string) => new Problem(400, 'invalid-upload-request', 'Invalid upload request', detail, { field });

/** Under functions-framework the body is already parsed into rawBody; behind the local gateway it is read here, bounded. */
async function bodyText(req: Request): Promise<string> {
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  if (raw) return raw.toString('utf8');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Problem(413, 'too-large', 'Payload Too Large', `The request body is over ${MAX_BODY} bytes; it only describes the file.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function parseUploadIntent(req: Request, maxBytes: number): Promise<UploadIntent> {
  if (!req.is('application/json')) throw new Problem(415, 'unsupported-media-type', 'Unsupported Media Type', 'Describe the file as application/json: {"fileName", "size", "contentType", "sha256"?}.');
  let body: unknown;
  try {
    body = JSON.parse(await bodyText(req));
  } catch {
    throw invalid('body', 'The body is not JSON.');
  }
  const { fileName, size, contentType, sha256 } = (body ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(size) || (size as number) < 1 || (size as number) > maxBytes) throw invalid('size', `size must be the file's exact byte count, from 1 to ${maxBytes}.`);
  if (typeof contentType !== 'string' || !(SIGNED_CONTENT_TYPES as readonly string[]).includes(contentType)) {
    throw new Problem(400, 'invalid-upload-request', 'Invalid upload request', `contentType must be one of ${SIGNED_CONTENT_TYPES.join(', ')}.`, { field: 'contentType', allowed: [...SIGNED_CONTENT_TYPES] });
  }
  if (fileName !== undefined && typeof fileName !== 'string') throw invalid('fileName', 'fileName must be a string.');
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))) throw invalid('sha256', 'sha256 must be 64 lower-case hex digits.');
  const name = sanitizeFileName(fileName);
  return { size: size as number, contentType, ...(name ? { fileName: name } : {}), ...(sha256 ? { sha256 } : {}) };
}
