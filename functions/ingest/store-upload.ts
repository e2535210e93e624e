/**
 * One uploaded file, from bytes to a promoted object: stream through the
 * validator into staging, then promote to `incoming/` with an
 * if-generation-match=0 precondition, so the loader only ever sees complete,
 * valid files and a failure at any step leaves nothing under `incoming/`.
 * Staging and promotion are separate steps because whether to promote is only
 * known at the end of the stream (all files valid, content not a duplicate).
 *
 * A file whose canonical form fits in HELD_UPLOAD_BYTES is staged in memory
 * and promoted with one write; a larger one is staged as an object under
 * `staging/` and promoted by a copy. Small files are most uploads, and the
 * staging object cost them a write, a copy and a delete.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../core/ports.js';
import { SpillingSink } from '../core/spill.js';
import type { UploadLedger, UploadRecord } from '../core/uploads.js';
import { streamingValidator } from './off-thread-validator.js';
import { InvalidCsvError, type ValidationLimits } from './validator.js';

export interface UploadMeta {
  uploadId: string;
  fileName?: string;
  contentType: string;
  uploader?: string;
  /** A signed upload's record so far, which its upload record keeps. */
  signed?: { createdAt: string; uploadUrlExpiresAt: string };
  /**
   * Bytes the file was declared to be, as sent (gzip included), when known: where it is validated
   * depends on it (off-thread-validator.ts, validationPlace). An upper bound will do.
   */
  declaredBytes?: number;
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

/**
 * Memory held per staged file at most: with the concurrent-upload limit and
 * the files-per-request limit this bounds what small files can hold at once.
 */
export const HELD_UPLOAD_BYTES = 256 * 1024;

/** A complete, valid file, not yet visible to the loader. */
export interface StagedUpload {
  uploadId: string;
  /** In memory when small, else the object under `staging/`. */
  content: { bytes: Buffer } | { staging: string };
  bytes: number;
  rows: number;
  sha256: string;
  /** SHA-256 of the canonical CSV: the same for any copy of the same rows (line ends, column order, gzip). */
  canonicalSha256: string;
  fileName?: string;
  contentType: string;
  signed?: UploadMeta['signed'];
  /** Object metadata: provenance labels plus the checksum and counts. */
  metadata: Record<string, string>;
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

/**
 * Streams one file through `decoders` (gunzip, when it is compressed), the
 * digest (of the CSV as sent, so a gzipped copy is the same file) and the
 * validator into staging. Nothing is left behind when it fails.
 */
export async function stageUpload(
  deps: { store: ObjectStore; limits: ValidationLimits },
  source: Readable,
  decoders: Transform[],
  meta: UploadMeta,
  signal?: AbortSignal,
): Promise<StagedUpload> {
  const { uploadId } = meta;
  const staging = `${STAGING_PREFIX}${uploadId}.csv`;
  const digest = new Digest();
  const canonical = new Digest();
  const validator = streamingValidator(deps.limits, meta.declaredBytes);
  const fileName = sanitizeFileName(meta.fileName);
  const labels: Record<string, string> = {
    uploadId,
    originalContentType: meta.contentType,
    ...(fileName ? { originalName: fileName } : {}),
    ...(meta.uploader ? { uploader: meta.uploader } : {}),
  };
  let written: Promise<unknown> | undefined;
  const sink = new SpillingSink(HELD_UPLOAD_BYTES, () => {
    const stream = new PassThrough();
    written = deps.store.write(staging, stream, { contentType: 'text/csv', metadata: labels, ...(signal ? { signal } : {}) });
    return { stream, done: written };
  });
  try {
    await pipeline([source, ...decoders, digest, validator, canonical, sink] as unknown as [Readable, Transform]);
  } catch (e) {
    if (written) {
      await written.catch(() => undefined);
      await deps.store.delete(staging).catch(() => undefined);
    }
    if (e instanceof InvalidCsvError && fileName) e.fileName = fileName;
    throw e;
  }
  const sha256 = digest.hex();
  const metadata = { ...labels, sha256, rows: String(validator.rows), bytes: String(digest.bytes) };
  const held = sink.held;
  const content = held ? { bytes: held } : { staging };
  return {
    uploadId,
    content,
    bytes: digest.bytes,
    rows: validator.rows,
    sha256,
    canonicalSha256: canonical.hex(),
    contentType: meta.contentType,
    metadata,
    ...(fileName ? { fileName } : {}),
    ...(meta.signed ? { signed: meta.signed } : {}),
  };
}

/**
 * Makes a staged file visible to the loader, with its upload record created
 * first so the loader always finds it. A staging object is the caller's to
 * discard, success or not, so that it can do so alongside its own last step.
 */
export async function promoteUpload(deps: { store: ObjectStore; ledger: UploadLedger }, staged: StagedUpload): Promise<StoredUpload> {
  const { store, ledger } = deps;
  const { uploadId, bytes, rows, sha256 } = staged;
  const object = incomingName(uploadId);
  const now = new Date().toISOString();
  const record: UploadRecord = {
    uploadId,
    status: 'stored',
    object,
    bytes,
    rows,
    sha256,
    contentType: staged.contentType,
    createdAt: staged.signed?.createdAt ?? now,
    updatedAt: now,
    ...(staged.signed ? { uploadUrlExpiresAt: staged.signed.uploadUrlExpiresAt } : {}),
    ...(staged.fileName ? { fileName: staged.fileName } : {}),
    ...(staged.metadata.uploader ? { uploader: staged.metadata.uploader } : {}),
  };
  await ledger.create(record.uploadId, record);
  const { content } = staged;
  const promotion =
    'bytes' in content
      ? store.write(object, content.bytes, { ifGenerationMatch: '0', contentType: 'text/csv', metadata: staged.metadata })
      : store.copy(content.staging, object, { ifGenerationMatch: '0', metadata: staged.metadata });
  const promoted = await promotion.catch(async (e: Error) => {
    await ledger.update(uploadId, () => ({ status: 'failed', reason: `could not store the file: ${e.message}` }));
    throw e;
  });
  return { uploadId, object, generation: promoted.generation, bytes, rows, sha256, status: 'stored' };
}

export async function discardStaged(store: ObjectStore, staged: StagedUpload): Promise<void> {
  if ('staging' in staged.content) await store.delete(staged.content.staging).catch(() => undefined);
}
