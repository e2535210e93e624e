/** Configuration from the environment, with the embedded defaults that make `npm start` work anywhere. */
import path from 'node:path';

export interface Config {
  profile: 'local' | 'cloud';
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
  /** Minimum time between two loads into the warehouse (BigQuery's table-modification quota; docs/design.md). */
  flushSpacingMs: number;
  /** How often the embedded pipeline retries pending files; in the cloud Cloud Scheduler does this. */
  flushTickMs: number;
  /** Failed loads of one file before it is quarantined. */
  maxLoadFailures: number;
  /** Secret that signs pagination cursors. */
  cursorSecret: string;
  logLevel: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const profile = env.PROFILE === 'cloud' ? 'cloud' : 'local';
  const dataDir = path.resolve(env.DATA_DIR ?? '.data');
  return {
    profile,
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
    flushSpacingMs: int(env, 'FLUSH_SPACING_MS', profile === 'cloud' ? 120_000 : 0),
    flushTickMs: int(env, 'FLUSH_TICK_MS', 1000),
    maxLoadFailures: int(env, 'MAX_LOAD_FAILURES', 5),
    cursorSecret: env.CURSOR_SECRET ?? '',
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
