/**
 * What a repeated Idempotency-Key is compared on: the SHA-256 of each file of
 * the request, computed as stageUpload computes it (of the CSV as sent, gzip
 * undone), so the same files in a new multipart envelope (a new boundary) are
 * the same payload. Nothing is stored.
 */
import { createHash, hash as oneShot } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request } from 'express';
import type { IngestLimits } from '../core/config.js';
import { bodySource } from '../core/http.js';
import { forEachFile, type Budgets } from './request-files.js';
import type { FileBody } from './store-upload.js';

async function sha256Of(body: FileBody): Promise<string> {
  if ('bytes' in body) return oneShot('sha256', body.bytes, 'hex');
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done();
    },
  });
  return pipeline([body.stream, ...body.decoders, sink] as unknown as [Readable, Writable]).then(() => hash.digest('hex'));
}

export function fileDigests(req: Request, limits: Pick<IngestLimits, 'maxFilesPerRequest'>, budgets: Budgets): Promise<string[]> {
  const body = bodySource(req);
  return forEachFile(req.headers, body, limits, budgets, (e) => body.destroy(e), (file) => sha256Of(file.body));
}

export const sameFiles = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
