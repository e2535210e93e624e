/**
 * `npm start`'s start-up recovery, before the first request is served: what a
 * killed predecessor left is put right (functions/loader/reconcile.ts), the
 * filesystem bucket's orphaned temp files are removed, resumable sessions that
 * had every byte are finalized, `incoming/` is reconciled against what was
 * loaded, and signed uploads and exports left half-way are taken up again
 * (uploads/recovery.ts, exports/recovery.ts). A data directory shared with other live processes only gives up work
 * older than one upload timeout: theirs may still be in progress.
 */
import { FsObjectStore } from '../adapters/local/fs-store.js';
import { requeueRunningExports } from '../exports/recovery.js';
import { holderIsGone } from '../core/uploads.js';
import { isStorageFull } from '../ingest/errors.js';
import { INCOMING_PREFIX } from '../ingest/store-upload.js';
import { reconcileIncoming, recoverAbandoned } from '../loader/reconcile.js';
import type { Runtime } from '../runtime.js';
import { recoverLanded } from '../uploads/recovery.js';

export async function recoverAtStartUp(rt: Runtime, now = new Date()): Promise<void> {
  try {
    await recover(rt, now);
  } catch (e) {
    // A full disk must not keep the server from starting (it refuses uploads 507 until space returns);
    // what recovery would have written waits for the next start, and notifications already on the bus still load.
    if (!isStorageFull(e)) throw e;
    rt.log.warn({ err: e }, 'start-up recovery postponed: the disk is full; it runs again at the next start');
  }
}

async function recover(rt: Runtime, now: Date): Promise<void> {
  const before = rt.config.sharedDataDir ? new Date(now.getTime() - rt.config.ingest.requestTimeoutMs) : now;
  const deps = { store: rt.store, ledger: rt.ledger, log: rt.log };
  const report = await recoverAbandoned(deps, { before, holderIsGone });
  const tempFiles = rt.store instanceof FsObjectStore ? await rt.store.removeTempFiles(before) : 0;
  const sessions = (await rt.localBucket?.sessions.recover()) ?? [];
  const announced = await reconcileIncoming(deps, [INCOMING_PREFIX], now);
  const landed = await recoverLanded(rt, before, !rt.config.sharedDataDir);
  const exports = await requeueRunningExports(rt, before);
  if (tempFiles || sessions.length || announced || landed.announced.length || exports.length) {
    rt.log.warn(
      { ...report, tempFiles, sessionsFinalized: sessions.length, announced, landedAnnounced: landed.announced.length, validationClaimsReleased: landed.released.length, exportsRequeued: exports.length },
      'start-up recovery',
    );
  }
  if (announced) await rt.flush();
}
