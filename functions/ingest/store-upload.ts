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
 * staging object cost them a write, a copy and a delete. A small body the
 * request has already read whole is checked and hashed in one pass, with no
 * stream stages (stageWhole); whichever way, the file goes through the same
 * checks (validator.ts, CsvCheck) and ends as the same StagedUpload.
 */
import { createHash, hash } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../core/ports.js';
import { SpillingSink } from '../core/spill.js';
import type { UploadLedger, UploadRecord } from '../core/uploads.js';
import { validationStarted } from '../ops/events.js';
import { streamingValidator, validationPlace } from './off-thread-validator.js';
import { checkWhole, InvalidCsvError, type ValidationLimits } from './validator.js';

/** A file's bytes: a stream, with the decoding still to apply to it (gunzip, the check that no gzip is left), or a small file already whole and decoded. */
export type FileBody = { stream: Readable; decoders: Transform[] } | { bytes: Buffer };

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

/** One-shot: a whole buffer needs no Hash object (crypto.hash, Node 20.12+). */
const sha256Hex = (bytes: Buffer): string => hash('sha256', bytes, 'hex');

/** What a staged file is labelled with in the store: where it came from. */
function provenance(meta: UploadMeta, fileName: string | undefined): Record<string, string> {
  return {
    uploadId: meta.uploadId,
    originalContentType: meta.contentType,
    ...(fileName ? { originalName: fileName } : {}),
    ...(meta.uploader ? { uploader: meta.uploader } : {}),
  };
}

function staged(
  meta: UploadMeta,
  fileName: string | undefined,
  labels: Record<string, string>,
  file: Pick<StagedUpload, 'content' | 'bytes' | 'rows' | 'sha256' | 'canonicalSha256'>,
): StagedUpload {
  return {
    uploadId: meta.uploadId,
    ...file,
    contentType: meta.contentType,
    metadata: { ...labels, sha256: file.sha256, rows: String(file.rows), bytes: String(file.bytes) },
    ...(fileName ? { fileName } : {}),
    ...(meta.signed ? { signed: meta.signed } : {}),
  };
}

/**
 * Validates one file into staging and hashes it: the SHA-256 of the CSV as
 * sent (gzip undone, so a gzipped copy is the same file) and of its canonical
 * form. Nothing is left behind when it fails. A file already whole in memory
 * and validated on this thread is checked in one call; any other streams.
 */
export async function stageUpload(
  deps: { store: ObjectStore; limits: ValidationLimits },
  body: FileBody,
  meta: UploadMeta,
  signal?: AbortSignal,
): Promise<StagedUpload> {
  const fileName = sanitizeFileName(meta.fileName);
  try {
    if ('bytes' in body && validationPlace(deps.limits, meta.declaredBytes) === 'main') return await stageWhole(deps, body.bytes, meta, fileName, signal);
    const streamed = 'bytes' in body ? { stream: Readable.from([body.bytes]), decoders: [] } : body;
    return await stageStream(deps, streamed, meta, fileName, signal);
  } catch (e) {
    if (e instanceof InvalidCsvError && fileName) e.fileName = fileName;
    throw e;
  }
}

async function stageWhole(deps: { store: ObjectStore; limits: ValidationLimits }, bytes: Buffer, meta: UploadMeta, fileName: string | undefined, signal?: AbortSignal): Promise<StagedUpload> {
  validationStarted('main');
  const { canonical, rows } = checkWhole(bytes, deps.limits);
  const canonicalBytes = canonical.length === 1 ? canonical[0]! : Buffer.concat(canonical);
  const labels = provenance(meta, fileName);
  let content: StagedUpload['content'] = { bytes: canonicalBytes };
  // The canonical form adds each row's line number: past what a staged file may hold, it is staged as an object.
  if (canonicalBytes.length > HELD_UPLOAD_BYTES) {
    content = { staging: `${STAGING_PREFIX}${meta.uploadId}.csv` };
    await deps.store.write(content.staging, canonicalBytes, { contentType: 'text/csv', metadata: labels, md5: false, ...(signal ? { signal } : {}) });
  }
  return staged(meta, fileName, labels, { content, bytes: bytes.length, rows, sha256: sha256Hex(bytes), canonicalSha256: sha256Hex(canonicalBytes) });
}

async function stageStream(
  deps: { store: ObjectStore; limits: ValidationLimits },
  { stream, decoders }: { stream: Readable; decoders: Transform[] },
  meta: UploadMeta,
  fileName: string | undefined,
  signal?: AbortSignal,
): Promise<StagedUpload> {
  const staging = `${STAGING_PREFIX}${meta.uploadId}.csv`;
  const digest = new Digest();
  const canonical = new Digest();
  const validator = streamingValidator(deps.limits, meta.declaredBytes);
  const labels = provenance(meta, fileName);
  let written: Promise<unknown> | undefined;
  const sink = new SpillingSink(HELD_UPLOAD_BYTES, () => {
    const spill = new PassThrough();
    written = deps.store.write(staging, spill, { contentType: 'text/csv', metadata: labels, md5: false, ...(signal ? { signal } : {}) });
    return { stream: spill, done: written };
  });
  try {
    await pipeline([stream, ...decoders, digest, validator, canonical, sink] as unknown as [Readable, Transform]);
  } catch (e) {
    if (written) {
      await written.catch(() => undefined);
      await deps.store.delete(staging).catch(() => undefined);
    }
    throw e;
  }
  const held = sink.held;
  return staged(meta, fileName, labels, { content: held ? { bytes: held } : { staging }, bytes: digest.bytes, rows: validator.rows, sha256: digest.hex(), canonicalSha256: canonical.hex() });
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
