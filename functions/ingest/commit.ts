/**
 * The end of one file's upload, once it is staged and valid: the same content
 * within the idempotency window is not stored twice. The content claim is made
 * before promotion, so two racing uploads of one file agree on which of them
 * is stored; the loser's staging object is discarded, never promoted.
 */
import type { ObjectStore } from '../core/ports.js';
import { Problem } from '../core/problem.js';
import type { IdempotencyIndex, UploadLedger } from '../core/uploads.js';
import { discardStaged, promoteUpload, type StagedUpload, type StoredUpload } from './store-upload.js';

export interface Committed {
  upload: StoredUpload;
  /** The same content was stored before: `upload` is that first upload. */
  duplicate: boolean;
}

export const inProgress = (what: string): Problem =>
  new Problem(409, 'in-progress', 'Conflict', `${what} is being stored by another request right now; retry in a moment to get its result.`);

export async function commitUpload(
  deps: { store: ObjectStore; ledger: UploadLedger; contents: IdempotencyIndex<StoredUpload> },
  staged: StagedUpload,
): Promise<Committed> {
  const claim = await deps.contents.claim('sha256', staged.sha256, staged.uploadId);
  if (!claim.won) {
    await discardStaged(deps.store, staged);
    if (!claim.entry.result) throw inProgress(`A file with the same content (sha256 ${staged.sha256})`);
    return { upload: claim.entry.result, duplicate: true };
  }
  // Once promoted (or not), the staging copy is only litter: it is deleted alongside the claim's last
  // step rather than before it, one store round trip less per upload. discardStaged never throws.
  try {
    const upload = await promoteUpload(deps, staged);
    await Promise.all([deps.contents.complete('sha256', staged.sha256, claim, upload), discardStaged(deps.store, staged)]);
    return { upload, duplicate: false };
  } catch (e) {
    await Promise.all([deps.contents.release('sha256', staged.sha256, claim), discardStaged(deps.store, staged)]);
    throw e;
  }
}
