/** Configuration from the environment, with the embedded defaults that make `npm start` work anywhere. */
import path from 'node:path';

/** What one `POST /upload` may cost; see README "Limits". */
export interface IngestLimits {
  /** Bytes on the wire per request (the cloud platform caps requests at 32 MB). */
  maxUploadBytes: number;
  /** Bytes after gunzip per request: bounds a zip bomb. */
  maxDecompressedBytes: number;
  maxRows: number;
  maxColumns: number;
  /** Characters in one cell. */
  maxFieldChars: number;
  /** Characters in one record: csv-parse buffers a record whole, so this bounds its memory. */
  maxRecordChars: number;
  maxFilesPerRequest: number;
  /** A request still streaming after this long is answered 408 and dropped. */
  requestTimeoutMs: number;
  /** Uploads streaming at once in this process; one more is answered 429. */
  maxConcurrentUploads: number;
  /** How long an Idempotency-Key or a file's SHA-256 maps to its first upload. */
  idempotencyWindowMs: number;
}

export interface Config {
  profile: 'local' | 'cloud';
  /** Google Cloud project: names traces in logs. */
  project: string;
  host: string;
  port: number;
  dataDir: string;
  bucket: string;
  /** Topic the bucket's object notifications go to, and its loader subscription. */
  notificationTopic: string;
  loaderSubscription: string;
  deadLetterTopic: string;
  maxDeliveryAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Secret that signs pagination cursors. */
  cursorSecret: string;
  logLevel: string;
  ingest: IngestLimits;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return value;
}

const MiB = 1024 * 1024;
/** API Gateway and Cloud Functions gen2 refuse larger requests themselves; ours must fail first, with a useful problem. */
export const CLOUD_REQUEST_CAP = 32_000_000;

function ingestLimits(env: NodeJS.ProcessEnv, profile: Config['profile']): IngestLimits {
  const cloud = profile === 'cloud';
  return {
    maxUploadBytes: int(env, 'MAX_UPLOAD_BYTES', cloud ? CLOUD_REQUEST_CAP : 512 * MiB),
    // In the cloud functions-framework inflates the body in memory before the handler runs; keep that bounded.
    maxDecompressedBytes: int(env, 'MAX_DECOMPRESSED_BYTES', cloud ? 256 * MiB : 4096 * MiB),
    maxRows: int(env, 'MAX_ROWS', 50_000_000),
    maxColumns: int(env, 'MAX_COLUMNS', 100),
    maxFieldChars: int(env, 'MAX_FIELD_CHARS', 64 * 1024),
    maxRecordChars: int(env, 'MAX_RECORD_CHARS', MiB),
    maxFilesPerRequest: int(env, 'MAX_FILES_PER_REQUEST', 10),
    requestTimeoutMs: int(env, 'UPLOAD_TIMEOUT_MS', 300_000),
    maxConcurrentUploads: int(env, 'MAX_CONCURRENT_UPLOADS', 8),
    idempotencyWindowMs: int(env, 'IDEMPOTENCY_WINDOW_SECONDS', 86_400) * 1000,
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const profile = env.PROFILE === 'cloud' ? 'cloud' : 'local';
  const dataDir = path.resolve(env.DATA_DIR ?? '.data');
  return {
    profile,
    project: env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT ?? 'local',
    host: env.HOST ?? '127.0.0.1',
    port: int(env, 'PORT', 8080),
    dataDir,
    bucket: env.BUCKET ?? 'flights-local',
    notificationTopic: env.NOTIFICATION_TOPIC ?? 'flights-objects',
    loaderSubscription: env.LOADER_SUBSCRIPTION ?? 'flights-loader',
    deadLetterTopic: env.DEAD_LETTER_TOPIC ?? 'flights-dead-letter',
    maxDeliveryAttempts: int(env, 'MAX_DELIVERY_ATTEMPTS', 5),
    minBackoffMs: int(env, 'MIN_BACKOFF_MS', 1000),
    maxBackoffMs: int(env, 'MAX_BACKOFF_MS', 60_000),
    cursorSecret: env.CURSOR_SECRET ?? '',
    logLevel: env.LOG_LEVEL ?? 'info',
    ingest: ingestLimits(env, profile),
  };
}
