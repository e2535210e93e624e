/**
 * Loads pending files in batches, so the number of warehouse jobs depends on
 * time, not on traffic (docs/design.md "Quota-aware batching"). A lease in
 * the bucket (lease.ts) lets one flush run at a time, for its whole duration,
 * and spaces flush starts out; a batch is capped in files and bytes; a failed
 * batch is bisected so one poison file cannot hold back the others, and a
 * file that keeps failing on its own is quarantined with a readable reason.
 * A job the warehouse failed for its own trouble charges nothing: an outage
 * stops the flush, a job's own failure holds back its batch (bisected once
 * held again) and the flush goes on.
 */
import { text } from 'node:stream/consumers';
import type { Logger } from 'pino';
import { batches } from '../core/batches.js';
import { WarehouseJobRetryableError, WarehouseUnavailableError, type EventBus, type LoadOutcome, type ObjectStore, type Warehouse } from '../core/ports.js';
import type { UploadLedger } from '../core/uploads.js';
import { INCOMING_PREFIX } from '../ingest/store-upload.js';
import { crashPoint } from '../core/crash-point.js';
import { acquireFlushLease, type HeldLease } from './lease.js';
import { PendingFiles, type PendingFile } from './pending.js';
import { markLoaded } from './upload-status.js';
import { fileLoaded, fileQuarantined, loaderFlush, type FlushOutcome } from '../ops/events.js';

/** BigQuery reads at most 10,000 source URIs per job. */
export const MAX_BATCH_FILES = 10_000;
export const QUARANTINE_PREFIX = 'quarantine/';
/** Times a file is held in a batch before its batch is bisected: a one-off backendError retries the batch whole. */
const HELD_BEFORE_SPLIT = 2;

export interface FlushSettings {
  /** Minimum time between two flush starts; 0 flushes on every trigger. */
  spacingMs: number;
  /**
   * How long the flush lease holds without a renewal. The holder renews it
   * every third of this, and before each warehouse job; it must outlast one
   * job (the warehouse's job timeout) with room for the listing.
   */
  leaseMs: number;
  /** Bytes of files per warehouse job (BigQuery: what fits its byte cap); a larger file goes alone. */
  maxBatchBytes: number;
  /** Failed loads of a file on its own before it is quarantined. */
  maxFailures: number;
  deadLetterTopic: string;
  /**
   * Back-off of a file whose job BigQuery failed itself with that file alone: `first` after the first such
   * job, doubling with each, up to `max`. Default 1 min and 30 min.
   */
  heldRetryMs?: { first: number; max: number };
}

const HELD_RETRY_MS = { first: 60_000, max: 30 * 60_000 };

/** When a file held alone `heldAlone` times before may be tried again, held once more at `now`. */
function heldRetryAt(heldAlone: number, now: number, { first, max } = HELD_RETRY_MS): Date {
  return new Date(now + Math.min(first * 2 ** Math.min(heldAlone, 30), max));
}

export interface FlushDeps {
  store: ObjectStore;
  bus: EventBus;
  warehouse: Warehouse;
  ledger: UploadLedger;
  log: Logger;
  settings: FlushSettings;
  /** The clock of held files' back-off (tests). */
  now?: () => number;
}

export interface FlushReport {
  ran: boolean;
  loaded: number;
  duplicates: number;
  quarantined: number;
  /** Files left pending because the warehouse failed their job for its own trouble (WarehouseJobRetryableError), or waiting out their back-off for it. */
  held: number;
  jobs: number;
}

interface QuarantineReport {
  object: string;
  generation: string;
  uploadId?: string;
  failures: number;
  reason: string;
  at: string;
}

/**
 * The report of this very file's quarantine, if one was cut short after it deleted the file (a crash
 * before its marker went): the flush that found the marker again failed on the file being gone, and
 * the report keeps why it was quarantined in the first place.
 */
async function earlierReport(store: ObjectStore, name: string, file: PendingFile): Promise<QuarantineReport | undefined> {
  try {
    const report = JSON.parse(await text(store.read(name))) as QuarantineReport;
    return report.object === file.object && report.generation === file.generation ? report : undefined;
  } catch {
    return undefined;
  }
}

async function quarantine(deps: FlushDeps, file: PendingFile): Promise<void> {
  const { store, bus, ledger, log, settings } = deps;
  const target = `${QUARANTINE_PREFIX}${file.object.slice(INCOMING_PREFIX.length)}`;
  const report = (await earlierReport(store, `${target}.report.json`, file)) ?? {
    object: file.object,
    generation: file.generation,
    uploadId: file.uploadId,
    failures: file.failures,
    reason: `could not be loaded after ${file.failures} attempts: ${file.lastError ?? 'unknown error'}`,
    at: new Date().toISOString(),
  };
  const { reason } = report;
  await store.copy(file.object, target, { ifSourceGenerationMatch: file.generation, metadata: { reason: reason.slice(0, 1024) } }).catch((e: Error) => {
    log.warn({ err: e, object: file.object }, 'quarantine copy failed; the report still records the reason');
  });
  await store.write(`${target}.report.json`, Buffer.from(JSON.stringify(report, null, 2)), { contentType: 'application/json' });
  await store.delete(file.object, { ifGenerationMatch: file.generation }).catch(() => undefined);
  await bus.publish(settings.deadLetterTopic, Buffer.from(JSON.stringify(report)), {
    source: 'loader',
    objectId: file.object,
    objectGeneration: file.generation,
    reason: reason.slice(0, 1024),
  });
  if (file.uploadId) await ledger.update(file.uploadId, () => ({ status: 'failed', reason }));
  await new PendingFiles(store).remove(file);
  fileQuarantined(log, report);
}

async function settle(deps: FlushDeps, files: PendingFile[], outcomes: LoadOutcome[], report: FlushReport): Promise<void> {
  const pending = new PendingFiles(deps.store);
  const outcomeOf = new Map(outcomes.map((o) => [`${o.object}#${o.generation}`, o]));
  // One file after another, not several at once: measured, settling 32 at a time made flushes finish
  // sooner and so hold fewer files, which cost each small upload more CPU (docs/benchmarks.md, "The loader's path").
  for (const file of files) {
    // The generation goes with `loaded`, so a notification copy whose handler records `loading` after this flush sees the file loaded.
    const outcome = outcomeOf.get(`${file.object}#${file.generation}`);
    const loaded = outcome?.status === 'loaded';
    if (loaded) report.loaded += 1;
    else report.duplicates += 1;
    const record = file.uploadId ? await markLoaded(deps.ledger, file.uploadId, file.generation, outcome?.rows) : undefined;
    await pending.remove(file);
    // Freshness counts a file once, when its rows first became queryable, not again for a repeated notification.
    const fromUploadSeconds = loaded && record ? (Date.now() - Date.parse(record.createdAt)) / 1000 : undefined;
    fileLoaded(deps.log, loaded ? 'loaded' : 'duplicate', outcome?.rows ?? 0, fromUploadSeconds, { uploadId: file.uploadId, object: file.object });
  }
}

/** Thrown when the lease was taken over: this flush stops before starting another job; its files stay pending. */
class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** Loads `files` in one job; on failure splits them in halves until the failing files stand alone. */
async function loadGroup(deps: FlushDeps, lease: HeldLease, files: PendingFile[], report: FlushReport): Promise<void> {
  // A job is only ever started under a lease good for at least one more job.
  if (!(await lease.renew())) throw new LeaseLostError('the flush lease expired and was taken over');
  report.jobs += 1;
  try {
    crashPoint('before-load');
    const outcomes = await deps.warehouse.load(
      files.map((f) => ({ object: f.object, generation: f.generation, uri: deps.store.uri(f.object, f.generation), ...(f.bytes === undefined ? {} : { bytes: f.bytes }) })),
    );
    crashPoint('after-load');
    await settle(deps, files, outcomes, report);
    return;
  } catch (e) {
    if (e instanceof WarehouseJobRetryableError) return hold(deps, lease, files, e, report);
    // An outage is no file's fault: splitting the batch or counting it against the files would quarantine them all.
    if (e instanceof WarehouseUnavailableError) throw e;
    const message = (e as Error).message;
    deps.log.warn({ files: files.length, err: e }, 'batch load failed');
    if (files.length > 1) return bisect(deps, lease, files, report);
    const failed = await new PendingFiles(deps.store).recordFailure(files[0]!, message);
    // One line per attempt of a file alone, naming it: what an operator (and the poison-file test) counts.
    deps.log.warn({ object: failed.object, generation: failed.generation, uploadId: failed.uploadId, attempt: failed.failures, maxAttempts: deps.settings.maxFailures, err: e }, 'file failed to load');
    if (failed.uploadId) await deps.ledger.update(failed.uploadId, () => ({ reason: `attempt ${failed.failures} failed: ${message}` }));
    if (failed.failures >= deps.settings.maxFailures) {
      await quarantine(deps, failed);
      report.quarantined += 1;
    }
  }
}

async function bisect(deps: FlushDeps, lease: HeldLease, files: PendingFile[], report: FlushReport): Promise<void> {
  const half = Math.ceil(files.length / 2);
  await loadGroup(deps, lease, files.slice(0, half), report);
  await loadGroup(deps, lease, files.slice(half), report);
}

/**
 * BigQuery answered and failed this batch's job for its own trouble, which it
 * documents as retryable: no file is charged (none is quarantined for it),
 * and the flush goes on with the next batch. It may still be tied to a file
 * (one that trips a BigQuery bug every time), so a batch with a file held
 * before is bisected: the files that load, load, and such a file ends up
 * held alone, named each time it is tried, after a back-off that doubles up
 * to 30 minutes, until BigQuery loads it.
 */
async function hold(deps: FlushDeps, lease: HeldLease, files: PendingFile[], e: WarehouseJobRetryableError, report: FlushReport): Promise<void> {
  const pending = new PendingFiles(deps.store);
  // Alone, the file backs off: a job a flush would fail for as long as BigQuery's trouble lasts.
  const retryAt = files.length === 1 ? heldRetryAt(files[0]!.heldAlone ?? 0, (deps.now ?? Date.now)(), deps.settings.heldRetryMs) : undefined;
  const held: PendingFile[] = [];
  for (const file of files) held.push(await pending.recordHeld(file, e.message, retryAt));
  if (held.length > 1 && held.some((f) => (f.held ?? 0) >= HELD_BEFORE_SPLIT)) return bisect(deps, lease, held, report);
  report.held += held.length;
  const [file] = held;
  if (held.length > 1 || !file) {
    deps.log.warn({ files: held.length, err: e }, 'batch held: BigQuery failed its job itself; it runs again next flush');
    return;
  }
  deps.log.warn(
    { object: file.object, generation: file.generation, uploadId: file.uploadId, held: file.held, nextAttemptAt: file.retryAt, err: e },
    'file held: BigQuery failed its job itself; it stays pending, charged nothing',
  );
  const reason = `waiting on BigQuery: it failed this file's load job ${file.held} times with its own error; next attempt at ${file.retryAt}: ${e.message}`;
  if (file.uploadId) await deps.ledger.update(file.uploadId, () => ({ reason }));
}

/** `failed` when no file settled, `partial` when some did, `ok` when all did. */
function flushOutcome(report: FlushReport, files: number): FlushOutcome {
  const settled = report.loaded + report.duplicates;
  return settled === files ? 'ok' : settled === 0 ? 'failed' : 'partial';
}

export async function flushPending(deps: FlushDeps): Promise<FlushReport> {
  const report: FlushReport = { ran: false, loaded: 0, duplicates: 0, quarantined: 0, held: 0, jobs: 0 };
  const { spacingMs, leaseMs, maxBatchBytes } = deps.settings;
  const lease = await acquireFlushLease(deps.store, { spacingMs, ttlMs: leaseMs });
  if (!lease) return report;
  lease.keepAlive();
  report.ran = true;
  const startedAt = performance.now();
  let files: PendingFile[] = [];
  let held = false;
  try {
    const due = await new PendingFiles(deps.store).due(MAX_BATCH_FILES, (deps.now ?? Date.now)());
    files = due.files;
    // Still held back by BigQuery, so the flush is `held` while they wait: the loads-held alert keeps its flushes.
    report.held += due.waiting;
    for (const batch of batches(files, MAX_BATCH_FILES, maxBatchBytes)) await loadGroup(deps, lease, batch, report);
  } catch (e) {
    if (e instanceof WarehouseUnavailableError) {
      held = true;
      deps.log.warn({ ...report, err: e }, 'flush stopped: the warehouse is unavailable; the files stay pending for the next flush');
    } else if (e instanceof LeaseLostError) deps.log.warn({ ...report }, 'flush stopped: its lease was taken over');
    else throw e;
  } finally {
    await lease.release();
  }
  // `held` whenever BigQuery's trouble left a file pending, even if others loaded: the loads-held alert then also fires for a file it keeps failing.
  if (report.jobs || report.held) loaderFlush(deps.log, held || report.held ? 'held' : flushOutcome(report, files.length), (performance.now() - startedAt) / 1000, { ...report, files: files.length });
  return report;
}

/**
 * Runs flushes one at a time in this process; a trigger during a flush runs one more afterwards.
 * `gatherMs`: each flush first waits this long, so that files announced meanwhile join its batch.
 * A trigger waits for the first flush that starts after it, not for the ones later triggers queue:
 * under a steady stream of uploads the flushes follow one another without a pause, and waiting for
 * the last of them would hold every delivery (and its bus message) until the stream stops.
 */
export function singleFlight(flush: () => Promise<unknown>, gatherMs = 0): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let gathering = false;
  const start = (): Promise<void> => {
    const flight = (async () => {
      if (gatherMs > 0) {
        gathering = true;
        await new Promise((resolve) => setTimeout(resolve, gatherMs));
        gathering = false;
      }
      await flush();
    })().finally(() => {
      running = undefined;
    });
    return (running = flight);
  };
  const startQueued = (): Promise<void> => {
    queued = undefined;
    return start();
  };
  return () => {
    if (queued) return queued;
    if (!running) return start();
    // A trigger while the flush is still gathering is in its batch already.
    if (gathering) return running;
    return (queued = running.then(startQueued, startQueued));
  };
}
