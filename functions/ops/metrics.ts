/**
 * The process's Prometheus metrics (`GET /metrics` on the local gateway). Only
 * functions/ops/events.ts and the gateway's request observer write them, so
 * each metric has exactly one log line beside it (the validations tally
 * excepted: a per-file tuning figure with nothing worth a line). Histogram bounds come from
 * core/slo.ts, where the SLO thresholds are bucket edges.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FRESHNESS_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS } from '../core/slo.js';

export const registry = new Registry();

export const FLUSH_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

export const metrics = {
  requests: new Counter({
    name: 'flights_http_requests_total',
    help: 'Requests through the gateway, by operation (spec path) and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  }),
  requestDuration: new Histogram({
    name: 'flights_http_request_duration_seconds',
    help: 'Gateway request latency, from the request to the end of the response.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [...LATENCY_BUCKETS_SECONDS],
    registers: [registry],
  }),
  uploads: new Counter({
    name: 'flights_uploads_total',
    help: 'Uploaded files by outcome: stored, duplicate (same content already stored), rejected.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  validations: new Counter({
    name: 'flights_ingest_validations_total',
    help: 'Files whose validation started, by the thread it runs on: main, or worker (VALIDATION_THREADS, VALIDATION_THREAD_MIN_BYTES).',
    labelNames: ['thread'] as const,
    registers: [registry],
  }),
  uploadBytes: new Counter({ name: 'flights_upload_bytes_total', help: 'Bytes of canonical CSV stored.', registers: [registry] }),
  uploadRows: new Counter({ name: 'flights_upload_rows_total', help: 'Rows stored.', registers: [registry] }),
  rowsRejected: new Counter({
    name: 'flights_rows_rejected_total',
    help: 'Rows of refused files (a file is refused whole), by the problem that refused it.',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  flushes: new Counter({
    name: 'flights_loader_flushes_total',
    help: 'Loader flushes that ran a warehouse job, by outcome: ok, partial (some files failed), failed, held (the warehouse unavailable, or it failed a batch job itself; files left pending).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  flushDuration: new Histogram({
    name: 'flights_loader_flush_duration_seconds',
    help: 'Duration of loader flushes that ran a warehouse job.',
    labelNames: ['outcome'] as const,
    buckets: [...FLUSH_BUCKETS_SECONDS],
    registers: [registry],
  }),
  loadedFiles: new Counter({
    name: 'flights_loader_files_total',
    help: 'Files settled by the loader: loaded, duplicate (already in the warehouse), quarantined.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  freshness: new Histogram({
    name: 'flights_freshness_seconds',
    help: 'From a file stored to its rows queryable.',
    buckets: [...FRESHNESS_BUCKETS_SECONDS],
    registers: [registry],
  }),
  deadLetters: new Counter({ name: 'flights_dead_letters_total', help: 'Messages that reached the dead-letter topic.', registers: [registry] }),
  backlog: new Gauge({
    name: 'flights_bus_backlog_messages',
    help: 'Messages kept for a subscription and not yet acknowledged.',
    labelNames: ['subscription'] as const,
    registers: [registry],
  }),
  oldestAge: new Gauge({
    name: 'flights_bus_oldest_message_age_seconds',
    help: 'Age of the oldest unacknowledged message of a subscription (0 when empty).',
    labelNames: ['subscription'] as const,
    registers: [registry],
  }),
};
