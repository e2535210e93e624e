/** Configuration from the environment, with the embedded defaults that make `npm start` work anywhere. */
import os from 'node:os';
import path from 'node:path';
import { EVENT_FUNCTION_TIMEOUT_SECONDS } from './topology.js';

/** What one `POST /upload` may cost; see README "Limits". */
export interface IngestLimits {
  /** Bytes on the wire per request (the cloud platform caps requests at 32 MB). */
  maxUploadBytes: number;
  /** Bytes after gunzip per request: bounds a zip bomb. */
  maxDecompressedBytes: number;
  /** Bytes after gunzip per byte received so far: stops a zip bomb in its first kilobytes. */
  maxDecompressionRatio: number;
  maxRows: number;
  maxColumns: number;
  /** Characters in one cell. */
  maxFieldChars: number;
  /** Characters in one record: the CSV reader buffers a record whole, so this bounds its memory. */
  maxRecordChars: number;
  maxFilesPerRequest: number;
  /** A request still streaming after this long is answered 408 and dropped. */
  requestTimeoutMs: number;
  /**
   * An upload whose body brings fewer than minUploadBytesPerSecond × uploadStallMs / 1000 bytes in
   * any uploadStallMs is answered 408: a slow or stalled client gives its slot to one that makes progress.
   */
  uploadStallMs: number;
  minUploadBytesPerSecond: number;
  /** Uploads streaming at once in this process; one more is answered 429. */
  maxConcurrentUploads: number;
  /**
   * Worker threads that validate uploads beside the main thread (0: validation runs on it). They
   * pay only where a core is free; see docs/benchmarks.md "Validation on a thread of its own".
   */
  validationThreads: number;
  /** Uploads declared smaller than this stay on the main thread, where they cost less CPU (0: every upload on a thread). */
  validationThreadMinBytes: number;
  /** How long an Idempotency-Key or a file's SHA-256 maps to its first upload. */
  idempotencyWindowMs: number;
}

export interface Config {
  profile: 'local' | 'cloud';
  /** Each port's adapter; PROFILE sets all three, STORE / BUS / WAREHOUSE override one. */
  store: 'local' | 'gcs';
  bus: 'local' | 'pubsub';
  warehouse: 'duckdb' | 'bigquery';
  /** Google Cloud project (cloud adapters and the Pub/Sub emulator). */
  projectId: string;
  /** `host:port` of a Pub/Sub emulator, as the official client reads it. */
  pubsubEmulatorHost?: string;
  bigQuery: { dataset: string; location: string; maximumBytesBilled: number; jobTimeoutMs: number };
  host: string;
  port: number;
  /** A connection whose request headers are not complete after this long is answered 408 and closed. */
  headersTimeoutMs: number;
  dataDir: string;
  /**
   * Several processes use DATA_DIR at once (`npm run start:emulators` runs each
   * function in its own process): the filesystem bucket then locks across
   * processes and DuckDB opens its file per operation.
   */
  sharedDataDir: boolean;
  /**
   * DuckDB's threads (0: its default, one per core). The setting is global to the database, queries and
   * large loads included; 1 halves DuckDB's CPU per small load (docs/benchmarks.md, "Where a small upload's CPU goes").
   */
  duckDbThreads: number;
  bucket: string;
  /** Topic the bucket's object notifications go to, and its loader subscription. */
  notificationTopic: string;
  loaderSubscription: string;
  deadLetterTopic: string;
  /** Topic the flush schedule (Cloud Scheduler in the cloud) publishes a tick to. */
  flushTopic: string;
  maxDeliveryAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Minimum time between two flush starts (docs/design.md "Quota-aware batching"). */
  flushSpacingMs: number;
  /** How long the flush lease holds unrenewed: longer than one warehouse job (loader/lease.ts). */
  flushLeaseMs: number;
  /** How often the embedded pipeline retries pending files; in the cloud Cloud Scheduler does this. */
  flushTickMs: number;
  /** How often `npm run start:emulators` sends the reconcile tick; in the cloud Cloud Scheduler sends it hourly. */
  reconcileTickMs: number;
  /**
   * How long a flush waits before it lists pending files, so that files announced meanwhile share its
   * warehouse transaction (group commit). Locally a transaction per small upload cost more CPU than the upload.
   */
  flushGatherMs: number;
  /** Failed loads of one file before it is quarantined. */
  maxLoadFailures: number;
  /** Back-off of a file BigQuery keeps failing itself, alone: after the first such job, doubling up to `max` (loader/flush.ts). */
  heldRetryMs: { first: number; max: number };
  /** Secret that signs pagination cursors. */
  cursorSecret: string;
  logLevel: string;
  /** `pretty`: human-readable lines (pino-pretty) instead of JSON for Cloud Logging. */
  logFormat: 'json' | 'pretty';
  /** Origins the local gateway and the HTTP functions answer CORS requests from; empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Where clients reach the local gateway, for the signed URLs it serves; default: the address it listens on. */
  publicUrl?: string;
  /** Secret that signs the local bucket's URLs (GCS signs with the service account instead). */
  urlSigningSecret: string;
  /** Bytes of one GET /getdata response; a larger page is refused (413) in favour of POST /exports. */
  maxInlineResponseBytes: number;
  exports: ExportSettings;
  signedUploads: SignedUploadSettings;
  ingest: IngestLimits;
  auth: AuthSettings;
  /** How often the local dashboard samples the metrics into its history (DATA_DIR/ops/history.jsonl). */
  metricsSampleMs: number;
}

/** The local gateway's access control (API Gateway's, in the cloud). */
export interface AuthSettings {
  /** AUTH=off lets every call in, for local play; the start says so loudly. */
  enabled: boolean;
  /** API_KEYS: `name:key,name:key`, accepted beside the keys file's. */
  keys: string;
  /** API_KEYS_FILE: `{"keys":[{"name","key"}]}`; `npm start` creates it with a development key. */
  keysFile: string;
}

export interface SignedUploadSettings {
  /** How long the upload URL may start a session (the session itself then lasts as GCS keeps it: a week). */
  urlTtlSeconds: number;
  /** Largest file POST /uploads accepts. */
  maxBytes: number;
  /** The notification subscription of the validator that picks up finished uploads under landing/. */
  validatorSubscription: string;
  /** How long a validator run's claim on an upload holds unrenewed; after that a redelivery takes over (uploads/claim.ts). */
  validationLeaseMs: number;
}

export interface ExportSettings {
  /** Topic export requests are published to, and the exporter's subscription. */
  topic: string;
  subscription: string;
  /** Lifetime of the download URLs GET /exports/{id} hands out. */
  urlTtlSeconds: number;
}

/**
 * Cloud Functions gen2 caps a streamed response at 10 MB (32 MB buffered, as
 * API Gateway does); pages stay under the lower figure, locally too, so a
 * query that works on a laptop works in the cloud.
 */
export const CLOUD_STREAMED_RESPONSE_CAP = 10_000_000;

function choice<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!allowed.includes(raw as T)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

export function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return value;
}

const MiB = 1024 * 1024;

/**
 * What the validator checks per second: 15 MiB/s, the lowest of bench/validate.ts's runs on a
 * 100 MB file on this shared 2-core machine under load (45–70 MiB/s on a quiet minute,
 * docs/benchmarks.md), taken as what one Cloud Functions vCPU does on a bad day.
 */
export const VALIDATOR_BYTES_PER_SECOND = 15 * MiB;
/**
 * The largest signed upload: what the validator finishes in half an event-driven function's
 * timeout; the other half is for reading and writing the bucket, the promotion copy, a cold start
 * and a redelivery waiting out a dead run's claim. 15 MiB/s × 270 s ≈ 3.96 GiB.
 */
export const SIGNED_UPLOAD_CAP = Math.floor(VALIDATOR_BYTES_PER_SECOND * (EVENT_FUNCTION_TIMEOUT_SECONDS / 2));
/** API Gateway and Cloud Functions gen2 refuse larger requests themselves; ours must fail first, with a useful problem. */
export const CLOUD_REQUEST_CAP = 32_000_000;

/** Where the validator thread starts to pay for an upload's messages (docs/benchmarks.md, "Validation on a thread of its own"). */
export const VALIDATION_THREAD_MIN_BYTES = 4 * MiB;

function ingestLimits(env: NodeJS.ProcessEnv, profile: Config['profile']): IngestLimits {
  const cloud = profile === 'cloud';
  return {
    maxUploadBytes: int(env, 'MAX_UPLOAD_BYTES', cloud ? CLOUD_REQUEST_CAP : 512 * MiB),
    // In the cloud functions-framework inflates the body in memory before the handler runs; keep that bounded.
    maxDecompressedBytes: int(env, 'MAX_DECOMPRESSED_BYTES', cloud ? 256 * MiB : 4096 * MiB),
    // Flights CSV gzips 3–4×; 20× leaves room for emptier files and none for a bomb (~1000×).
    maxDecompressionRatio: int(env, 'MAX_DECOMPRESSION_RATIO', 20),
    maxRows: int(env, 'MAX_ROWS', 50_000_000),
    maxColumns: int(env, 'MAX_COLUMNS', 100),
    maxFieldChars: int(env, 'MAX_FIELD_CHARS', 64 * 1024),
    maxRecordChars: int(env, 'MAX_RECORD_CHARS', MiB),
    maxFilesPerRequest: int(env, 'MAX_FILES_PER_REQUEST', 10),
    requestTimeoutMs: int(env, 'UPLOAD_TIMEOUT_MS', 300_000),
    uploadStallMs: int(env, 'UPLOAD_STALL_MS', 10_000),
    minUploadBytesPerSecond: int(env, 'UPLOAD_MIN_BYTES_PER_SECOND', 1024),
    maxConcurrentUploads: int(env, 'MAX_CONCURRENT_UPLOADS', 8),
    // Locally a second core is the laptop's own; in the cloud availableParallelism() counts the host's
    // CPUs, not the function's vCPU quota, so a thread there is the operator's choice (docs/design.md).
    validationThreads: int(env, 'VALIDATION_THREADS', !cloud && os.availableParallelism() > 1 ? 1 : 0),
    validationThreadMinBytes: int(env, 'VALIDATION_THREAD_MIN_BYTES', VALIDATION_THREAD_MIN_BYTES),
    idempotencyWindowMs: int(env, 'IDEMPOTENCY_WINDOW_SECONDS', 86_400) * 1000,
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const profile = choice(env, 'PROFILE', ['local', 'cloud'] as const, 'local');
  const cloud = profile === 'cloud';
  const dataDir = path.resolve(env.DATA_DIR ?? '.data');
  return {
    profile,
    store: choice(env, 'STORE', ['local', 'gcs'] as const, cloud ? 'gcs' : 'local'),
    bus: choice(env, 'BUS', ['local', 'pubsub'] as const, cloud ? 'pubsub' : 'local'),
    warehouse: choice(env, 'WAREHOUSE', ['duckdb', 'bigquery'] as const, cloud ? 'bigquery' : 'duckdb'),
    projectId: env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT ?? 'local',
    pubsubEmulatorHost: env.PUBSUB_EMULATOR_HOST || undefined,
    bigQuery: {
      dataset: env.BQ_DATASET ?? 'flights',
      location: env.BQ_LOCATION ?? 'US',
      maximumBytesBilled: int(env, 'BQ_MAX_BYTES_BILLED', 10 * 1024 ** 3),
      jobTimeoutMs: int(env, 'BQ_JOB_TIMEOUT_MS', 120_000),
    },
    host: env.HOST ?? '127.0.0.1',
    port: int(env, 'PORT', 8080),
    headersTimeoutMs: int(env, 'HEADERS_TIMEOUT_MS', 10_000),
    dataDir,
    sharedDataDir: choice(env, 'SHARED_DATA_DIR', ['0', '1'] as const, '0') === '1',
    duckDbThreads: int(env, 'DUCKDB_THREADS', 0),
    bucket: env.BUCKET ?? 'flights-local',
    notificationTopic: env.NOTIFICATION_TOPIC ?? 'flights-objects',
    loaderSubscription: env.LOADER_SUBSCRIPTION ?? 'flights-loader',
    deadLetterTopic: env.DEAD_LETTER_TOPIC ?? 'flights-dead-letter',
    flushTopic: env.FLUSH_TOPIC ?? 'flights-flush-schedule',
    maxDeliveryAttempts: int(env, 'MAX_DELIVERY_ATTEMPTS', 5),
    minBackoffMs: int(env, 'MIN_BACKOFF_MS', 1000),
    maxBackoffMs: int(env, 'MAX_BACKOFF_MS', 60_000),
    flushSpacingMs: int(env, 'FLUSH_SPACING_MS', cloud ? 60_000 : 0),
    // A lease outlives one BigQuery job; locally a load takes well under a second, and a crashed process should not block flushes for long.
    flushLeaseMs: int(env, 'FLUSH_LEASE_MS', cloud ? int(env, 'BQ_JOB_TIMEOUT_MS', 120_000) + 60_000 : 10_000),
    flushTickMs: int(env, 'FLUSH_TICK_MS', 1000),
    reconcileTickMs: int(env, 'RECONCILE_TICK_MS', 3_600_000),
    flushGatherMs: int(env, 'FLUSH_GATHER_MS', cloud ? 0 : 50),
    maxLoadFailures: int(env, 'MAX_LOAD_FAILURES', 5),
    heldRetryMs: { first: int(env, 'HELD_RETRY_FIRST_MS', 60_000), max: int(env, 'HELD_RETRY_MAX_MS', 30 * 60_000) },
    cursorSecret: env.CURSOR_SECRET ?? '',
    logLevel: env.LOG_LEVEL ?? 'info',
    logFormat: choice(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    publicUrl: env.PUBLIC_URL || undefined,
    urlSigningSecret: env.URL_SIGNING_SECRET ?? '',
    maxInlineResponseBytes: int(env, 'MAX_INLINE_RESPONSE_BYTES', CLOUD_STREAMED_RESPONSE_CAP),
    exports: {
      topic: env.EXPORT_TOPIC ?? 'flights-exports',
      subscription: env.EXPORT_SUBSCRIPTION ?? 'flights-exporter',
      urlTtlSeconds: int(env, 'EXPORT_URL_TTL_SECONDS', 3600),
    },
    signedUploads: {
      urlTtlSeconds: int(env, 'UPLOAD_URL_TTL_SECONDS', 3600),
      maxBytes: int(env, 'MAX_SIGNED_UPLOAD_BYTES', SIGNED_UPLOAD_CAP),
      validatorSubscription: env.VALIDATOR_SUBSCRIPTION ?? 'flights-validator',
      validationLeaseMs: int(env, 'VALIDATION_LEASE_MS', 90_000),
    },
    ingest: ingestLimits(env, profile),
    auth: {
      enabled: choice(env, 'AUTH', ['on', 'off'] as const, 'on') === 'on',
      keys: env.API_KEYS ?? '',
      keysFile: path.resolve(env.API_KEYS_FILE ?? path.join(dataDir, 'api-keys.json')),
    },
    metricsSampleMs: int(env, 'METRICS_SAMPLE_MS', 10_000),
  };
}
