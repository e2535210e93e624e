/**
 * The end of one file's upload, once it is staged and valid: the same content
 * within the idempotency window is not stored twice. Content is its canonical
 * CSV, so a copy with CRLF line ends, its columns in another order or gzipped
 * is the same file. The content claim is made before promotion, so two racing
 * uploads of one file agree on which of them is stored; the loser's staging
 * object is discarded, never promoted, and the loser is recorded as a
 * duplicate of the winner, answered the same way on the inline and signed paths.
 */
import { PreconditionFailedError, type ObjectStore } from '../core/ports.js';
import { Problem } from '../core/problem.js';
import { uploadView, type IdempotencyIndex, type UploadLedger, type UploadRecord, type UploadView } from '../core/uploads.js';
import { discardStaged, promoteUpload, type StagedUpload, type StoredUpload } from './store-upload.js';

export interface Committed {
  /** The stored upload, or for a duplicate its own record naming the first upload (`duplicateOf`). */
  upload: StoredUpload | UploadView;
  duplicate: boolean;
}

export const inProgress = (what: string): Problem =>
  new Problem(409, 'in-progress', 'Conflict', `${what} is being stored by another request right now; retry in a moment to get its result.`);

/** Records `staged` as a duplicate of `first` (a retry finds the record already there) and returns what the client sees. */
async function recordDuplicate(ledger: UploadLedger, staged: StagedUpload, first: StoredUpload): Promise<UploadView> {
  const now = new Date().toISOString();
  const record: UploadRecord = {
    uploadId: staged.uploadId,
    status: 'duplicate',
    duplicateOf: first.uploadId,
    object: first.object,
    bytes: staged.bytes,
    rows: staged.rows,
    sha256: staged.sha256,
    contentType: staged.contentType,
    createdAt: staged.signed?.createdAt ?? now,
    updatedAt: now,
    ...(staged.signed ? { uploadUrlExpiresAt: staged.signed.uploadUrlExpiresAt } : {}),
    ...(staged.fileName ? { fileName: staged.fileName } : {}),
  };
  await ledger.create(record.uploadId, record).catch((e: unknown) => {
    if (!(e instanceof PreconditionFailedError)) throw e;
  });
  return uploadView(ledger, (await ledger.get(record.uploadId)) ?? record);
}

export async function commitUpload(
  deps: { store: ObjectStore; ledger: UploadLedger; contents: IdempotencyIndex<StoredUpload> },
  staged: StagedUpload,
): Promise<Committed> {
  const claim = await deps.contents.claim('canonical', staged.canonicalSha256, staged.uploadId);
  if (!claim.won) {
    await discardStaged(deps.store, staged);
    if (!claim.entry.result) throw inProgress(`A file with the same rows (sha256 ${staged.sha256})`);
    // A retried validation of an upload that was stored before its last step failed: itself, not a copy.
    if (claim.entry.result.uploadId === staged.uploadId) return { upload: claim.entry.result, duplicate: false };
    return { upload: await recordDuplicate(deps.ledger, staged, claim.entry.result), duplicate: true };
  }
  // Once promoted (or not), the staging copy is only litter: it is deleted alongside the claim's last
  // step rather than before it, one store round trip less per upload. discardStaged never throws.
  try {
    const upload = await promoteUpload(deps, staged);
    await Promise.all([deps.contents.complete('canonical', staged.canonicalSha256, claim, upload), discardStaged(deps.store, staged)]);
    return { upload, duplicate: false };
  } catch (e) {
    await Promise.all([deps.contents.release('canonical', staged.canonicalSha256, claim), discardStaged(deps.store, staged)]);
    throw e;
  }
}
