/**
 * The operational events, each emitted in one place as both a structured log
 * line and a metric: Cloud Logging's log-based metrics (infra/) read the log
 * lines in the cloud, Prometheus (`/metrics`) reads the metrics locally, so
 * the two cannot drift. Every line carries `event`, the name a log-based
 * metric filters on (`jsonPayload.event="upload_stored"`), and its figures
 * under stable field names.
 */
import type { Logger } from '../core/logger.js';
import { metrics } from './metrics.js';

export const EVENTS = {
  uploadStored: 'upload_stored',
  uploadRejected: 'upload_rejected',
  loaderFlush: 'loader_flush',
  uploadLoaded: 'upload_loaded',
  fileQuarantined: 'file_quarantined',
  deadLetter: 'dead_letter',
} as const;

/** A file was stored (or recognised as content already stored). Fields: `bytes`, `rows`, `duplicate`. */
export function uploadStored(log: Logger, upload: { uploadId: string; bytes: number; rows: number }, duplicate: boolean, fields: object = {}): void {
  metrics.uploads.inc({ outcome: duplicate ? 'duplicate' : 'stored' });
  if (!duplicate) {
    metrics.uploadBytes.inc(upload.bytes);
    metrics.uploadRows.inc(upload.rows);
  }
  log.info({ event: EVENTS.uploadStored, upload, bytes: upload.bytes, rows: upload.rows, duplicate, ...fields }, duplicate ? 'upload is a duplicate; not stored again' : 'upload stored');
}

/**
 * A file's validation started on the main thread or a worker thread. Metric only, no log line: one
 * per file, a tally for tuning VALIDATION_THREAD_MIN_BYTES; the upload's own lines say the rest.
 */
export function validationStarted(thread: 'main' | 'worker'): void {
  metrics.validations.inc({ thread });
}

/** An upload was refused. Fields: `reason` (the problem's slug), `rows` (rows the refused file held, counted so far). */
export function uploadRejected(log: Logger, reason: string, rows: number, fields: object = {}): void {
  metrics.uploads.inc({ outcome: 'rejected' });
  metrics.rowsRejected.inc({ reason }, rows);
  log.info({ event: EVENTS.uploadRejected, reason, rows, ...fields }, 'upload rejected');
}

/**
 * `held`: the flush stopped because the warehouse was unavailable (a 503 the client gave up on, or a job
 * BigQuery failed itself); its files stay pending uncharged, and the loads-held alert counts these.
 */
export type FlushOutcome = 'ok' | 'partial' | 'failed' | 'held';

/** A flush ran warehouse jobs. Fields: `outcome`, `durationSeconds`, `files`, and the counts of the report. */
export function loaderFlush(log: Logger, outcome: FlushOutcome, durationSeconds: number, fields: object = {}): void {
  metrics.flushes.inc({ outcome });
  metrics.flushDuration.observe({ outcome }, durationSeconds);
  log.info({ event: EVENTS.loaderFlush, outcome, durationSeconds, ...fields }, 'flush done');
}

/**
 * A file's rows became queryable (`loaded`), or were already (`duplicate`).
 * Fields: `status`, `rows`, and `fromUploadSeconds` (the freshness SLI) on a
 * file's first load only, so the histogram and the log-based distribution
 * count the same files.
 */
export function fileLoaded(log: Logger, status: 'loaded' | 'duplicate', rows: number, fromUploadSeconds: number | undefined, fields: object = {}): void {
  metrics.loadedFiles.inc({ outcome: status });
  if (fromUploadSeconds !== undefined) metrics.freshness.observe(fromUploadSeconds);
  log.info({ event: EVENTS.uploadLoaded, status, rows, ...(fromUploadSeconds !== undefined ? { fromUploadSeconds } : {}), ...fields }, 'file loaded');
}

/** A file gave up loading and went to quarantine/. */
export function fileQuarantined(log: Logger, fields: object): void {
  metrics.loadedFiles.inc({ outcome: 'quarantined' });
  log.error({ event: EVENTS.fileQuarantined, ...fields }, 'file quarantined');
}

/** A message reached the dead-letter topic (a quarantined file's report or an undeliverable notification). */
export function deadLetter(log: Logger, fields: object): void {
  metrics.deadLetters.inc();
  log.error({ event: EVENTS.deadLetter, ...fields }, 'dead letter received');
}
