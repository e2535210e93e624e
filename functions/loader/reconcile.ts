/**
 * What a crash can leave behind, put right from the bucket alone:
 * - `recoverAbandoned`: idempotency claims whose owner died (released, so the
 *   client's retry gets in), upload records saying `stored` for an object
 *   that was never written (marked failed, with a reason), and `staging/`
 *   objects nobody will promote (deleted);
 * - `reconcileIncoming`: `incoming/` objects the warehouse may never have
 *   seen (a crash between an object's finalize and its notification) are
 *   marked pending again; the next flush loads them, and the warehouse's
 *   manifest, keyed by (object, generation), makes one already loaded a
 *   duplicate that adds no row.
 * Locally both run at start-up, before the first request; in the cloud the
 * scheduled reconcile tick runs them (core/topology.ts), with what start-up
 * recovery also takes up: signed uploads left half-way and exports left running.
 */
import type { Logger } from 'pino';
import type { ObjectInfo, ObjectStore } from '../core/ports.js';
import { readJson, writeJson } from '../core/records.js';
import { requeueRunningExports } from '../exports/recovery.js';
import type { Runtime } from '../runtime.js';
import { recoverLanded } from '../uploads/recovery.js';
import { IDEMPOTENCY_PREFIX, UPLOADS_PREFIX, type IdempotencyEntry, type UploadLedger, type UploadRecord } from '../core/uploads.js';
import { INCOMING_PREFIX, STAGING_PREFIX, type StoredUpload } from '../ingest/store-upload.js';
import { PendingFiles } from './pending.js';
import { markLoading } from './upload-status.js';

export interface ReconcileDeps {
  store: ObjectStore;
  ledger: UploadLedger;
  log: Logger;
}

export interface Abandoned {
  /** Work begun before this instant is abandoned unless a live process says otherwise. */
  before: Date;
  /** Whether the process that took a claim is gone (core/uploads.ts holderIsGone); in the cloud only age tells. */
  holderIsGone: (holder: string | undefined) => boolean;
}

export interface RecoveryReport {
  claimsReleased: number;
  claimsCompleted: number;
  recordsFailed: number;
  stagingDeleted: number;
}

async function objects(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

const olderThan = (info: ObjectInfo, before: Date): boolean => Date.parse(info.updated) < before.getTime();

/** The upload `uploadId` as its content claim's result, if its file is in incoming/. */
async function storedUpload(deps: ReconcileDeps, uploadId: string): Promise<StoredUpload | undefined> {
  const record = await deps.ledger.get(uploadId);
  const info = record && (await deps.store.stat(record.object));
  if (!record || !info || info.metadata.uploadId !== uploadId) return undefined;
  const { object, bytes, rows, sha256 } = record;
  return { uploadId, object, generation: info.generation, bytes, rows, sha256, status: 'stored' };
}

export const NEVER_STORED = 'the server stopped before the file was stored; nothing of it was kept: send it again';

export async function recoverAbandoned(deps: ReconcileDeps, abandoned: Abandoned): Promise<RecoveryReport> {
  const { store, ledger } = deps;
  const report: RecoveryReport = { claimsReleased: 0, claimsCompleted: 0, recordsFailed: 0, stagingDeleted: 0 };
  for (const info of await objects(store, IDEMPOTENCY_PREFIX)) {
    const claim = await readJson<IdempotencyEntry<unknown>>(store, info.name).catch(() => undefined);
    if (!claim || claim.value.result !== undefined) continue;
    if (!olderThan(info, abandoned.before) || !abandoned.holderIsGone(claim.value.holder)) continue;
    // A content claim whose file made it to incoming/ before the kill is completed, not released:
    // released, the client's retry would store the same rows a second time.
    const stored = info.name.startsWith(`${IDEMPOTENCY_PREFIX}key/`) ? undefined : await storedUpload(deps, claim.value.owner);
    // Only the generation read: a retry that took the claim over meanwhile keeps it.
    const settle = stored
      ? writeJson(store, info.name, { ...claim.value, result: stored }, claim.generation)
      : store.delete(info.name, { ifGenerationMatch: claim.generation });
    await settle.then(
      () => void (stored ? report.claimsCompleted++ : report.claimsReleased++),
      () => undefined,
    );
  }
  for (const info of await objects(store, UPLOADS_PREFIX)) {
    if (!olderThan(info, abandoned.before)) continue;
    const record = await readJson<UploadRecord>(store, info.name).catch(() => undefined);
    if (!record || record.value.status !== 'stored' || record.value.generation || (await store.stat(record.value.object))) continue;
    await ledger.update(record.value.uploadId, (r) => (r.status === 'stored' ? { status: 'failed', reason: NEVER_STORED } : {}));
    report.recordsFailed++;
  }
  for (const info of await objects(store, STAGING_PREFIX)) {
    if (!olderThan(info, abandoned.before)) continue;
    await store.delete(info.name, { ifGenerationMatch: info.generation }).then(
      () => void report.stagingDeleted++,
      () => undefined,
    );
  }
  if (report.claimsReleased || report.claimsCompleted || report.recordsFailed || report.stagingDeleted) deps.log.warn({ ...report }, 'recovered what a stopped process left');
  return report;
}

/** `incoming/` day folders (YYYY/MM/DD/) of the last `days` days up to `now`: the objects a periodic reconcile still has to look at. */
export function recentDayPrefixes(days: number, now = new Date()): string[] {
  return Array.from({ length: days }, (_, i) => {
    const day = new Date(now.getTime() - i * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '/');
    return `${INCOMING_PREFIX}${day}/`;
  });
}

/**
 * Marks pending every `incoming/` object under `prefixes` whose upload is not
 * settled (loaded or failed) and that is older than `before` (younger ones may
 * still have their notification on the way; marking them is harmless, but
 * needless). Returns how many were announced again.
 */
export async function reconcileIncoming(deps: ReconcileDeps, prefixes: string[], before: Date): Promise<number> {
  const pending = new PendingFiles(deps.store);
  let announced = 0;
  for (const prefix of prefixes) {
    for (const info of await objects(deps.store, prefix)) {
      if (!olderThan(info, before)) continue;
      const uploadId = info.metadata.uploadId;
      const record = uploadId ? await deps.ledger.get(uploadId) : undefined;
      if (record && (record.status === 'loaded' || record.status === 'failed') && record.generation === info.generation) continue;
      if (!(await pending.add({ object: info.name, generation: info.generation, ...(uploadId ? { uploadId } : {}) }))) continue;
      announced++;
      deps.log.warn({ object: info.name, generation: info.generation, uploadId }, 'incoming object not loaded; marked pending by the reconciler');
      if (uploadId) await markLoading(deps.ledger, uploadId, info.generation);
    }
  }
  return announced;
}

/** The attribute the reconcile schedule's ticks carry on the flush topic (core/topology.ts). */
export const RECONCILE_TASK = 'reconcile';

/** Days of `incoming/` a scheduled reconcile looks at: an hourly tick that missed a day still sees it the next. */
export const RECONCILE_DAYS = 2;

export interface ScheduledRecovery extends RecoveryReport {
  /** `incoming/` objects marked pending again. */
  announced: number;
  /** `landing/` files announced to the validator again. */
  landedAnnounced: number;
  exportsRequeued: number;
}

/**
 * The scheduled reconcile in the cloud: instances come and go, so only age
 * tells abandoned work (older than one upload timeout; a claim's lease has run
 * out by then and a retry takes it over anyway), and only recent day folders
 * of `incoming/` are listed, to keep the tick cheap at any bucket size. Like
 * `npm start`'s start-up recovery (local/recovery.ts) it also announces again
 * `landing/` files whose validation never ended (an instance stopped
 * mid-validation after Pub/Sub gave up on the notification, or the bucket's
 * notification lost) unless a live validation claim says a run is at it, and
 * queues again exports left `running` (an instance stopped between the
 * record and its publish). A requeued export still running elsewhere is
 * harmless: the second run finds the first one's BigQuery job by its id.
 */
export async function reconcileOnSchedule(rt: Runtime, now = new Date()): Promise<ScheduledRecovery> {
  const before = new Date(now.getTime() - rt.config.ingest.requestTimeoutMs);
  const deps = { store: rt.store, ledger: rt.ledger, log: rt.log };
  const report = await recoverAbandoned(deps, { before, holderIsGone: () => false });
  const announced = await reconcileIncoming(deps, recentDayPrefixes(RECONCILE_DAYS, now), before);
  const landed = await recoverLanded(rt, before, false);
  const exports = await requeueRunningExports(rt, before);
  return { ...report, announced, landedAnnounced: landed.announced.length, exportsRequeued: exports.length };
}
