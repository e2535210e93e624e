/**
 * One uploaded file, from bytes to a promoted object: stream through the
 * validator into `staging/`, then promote to `incoming/` with an
 * if-generation-match=0 precondition, so the loader only ever sees complete,
 * valid files and a failure at any step leaves nothing under `incoming/`.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import { newUploadId } from '../core/ids.js';
import type { ObjectStore } from '../core/ports.js';
import type { UploadLedger, UploadRecord } from '../core/uploads.js';
import { CsvValidator, type ValidationLimits } from './validator.js';

export interface UploadMeta {
  /** Given when the id was handed out before the bytes came (a signed upload); new otherwise. */
  uploadId?: string;
  fileName?: string;
  contentType: string;
  uploader?: string;
}

export interface StoredUpload {
  uploadId: string;
  object: string;
  generation: string;
  bytes: number;
  rows: number;
  sha256: string;
  status: 'stored';
}

export const INCOMING_PREFIX = 'incoming/';
export const STAGING_PREFIX = 'staging/';

export function incomingName(uploadId: string, now = new Date()): string {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '/');
  return `${INCOMING_PREFIX}${day}/${uploadId}.csv`;
}

/** Keeps a client's file name as a label only: no directories, no control characters, bounded. */
export function sanitizeFileName(name: string | undefined): string | undefined {
  if (!name) return undefined;
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 200);
  return clean && clean !== '.' && clean !== '..' ? clean : undefined;
}

/** Counts and hashes the bytes as they pass. */
class Digest extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null, c?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

export interface IngestDeps {
  store: ObjectStore;
  ledger: UploadLedger;
  limits?: ValidationLimits;
}

export async function storeUpload(deps: IngestDeps, source: Readable, meta: UploadMeta): Promise<StoredUpload> {
  const { store, ledger } = deps;
  const uploadId = meta.uploadId ?? newUploadId();
  const staging = `${STAGING_PREFIX}${uploadId}.csv`;
  const digest = new Digest();
  const validator = new CsvValidator(deps.limits);
  const canonical = new PassThrough();
  pipeline(source, digest, validator, canonical, () => undefined);
  const fileName = sanitizeFileName(meta.fileName);
  const labels: Record<string, string> = {
    uploadId,
    originalContentType: meta.contentType,
    ...(fileName ? { originalName: fileName } : {}),
    ...(meta.uploader ? { uploader: meta.uploader } : {}),
  };
  try {
    await store.write(staging, canonical, { contentType: 'text/csv', metadata: labels });
    const sha256 = digest.hex();
    const metadata = { ...labels, sha256, rows: String(validator.rows), bytes: String(digest.bytes) };
    const object = incomingName(uploadId);
    const now = new Date().toISOString();
    // The record exists before the object does, so the loader always finds it to update.
    const record: UploadRecord = {
      uploadId,
      status: 'stored',
      object,
      bytes: digest.bytes,
      rows: validator.rows,
      sha256,
      createdAt: now,
      updatedAt: now,
      ...(fileName ? { fileName } : {}),
    };
    await ledger.create(record);
    const promoted = await store.copy(staging, object, { ifGenerationMatch: '0', metadata }).catch(async (e: Error) => {
      await ledger.update(uploadId, () => ({ status: 'failed', reason: `could not store the file: ${e.message}` }));
      throw e;
    });
    return { uploadId, object, generation: promoted.generation, bytes: digest.bytes, rows: validator.rows, sha256, status: 'stored' };
  } finally {
    await store.delete(staging).catch(() => undefined);
  }
}
