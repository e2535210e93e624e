/** Starts the whole embedded pipeline on a fresh data directory and a free loopback port. */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { createLogger, type Logger } from '../../functions/core/logger.js';
import { startLocalPipeline, type LocalPipeline } from '../../functions/local/pipeline.js';
import { createRuntime, type Runtime } from '../../functions/runtime.js';
import { tempDir } from './temp.js';

export interface TestPipeline extends LocalPipeline {
  rt: Runtime;
  dataDir: string;
  env: Record<string, string>;
  /** Stops everything; the data directory stays for a restart. */
  stop(): Promise<void>;
}

export { tempDir };

/** A logger that keeps test output quiet but still formats every line, so logging bugs surface. */
export const quietLogger = () =>
  createLogger(
    'info',
    new Writable({
      write(_chunk, _enc, done) {
        done();
      },
    }),
  );

/**
 * The profiles the end-to-end suites run under: everything embedded, and the
 * bus on the real Pub/Sub emulator (started by test/support/global-setup.ts).
 */
export type TestProfile = 'embedded' | 'emulator';
export const PROFILES: TestProfile[] = ['embedded', 'emulator'];

/**
 * Settings for a profile; emulator runs get topics and subscriptions of their own (every name in
 * core/topology.ts), so suites sharing the emulator never see each other's messages, nor take over
 * each other's subscriptions.
 */
export function profileEnv(profile: TestProfile): Record<string, string> {
  if (profile === 'embedded') return {};
  const id = randomBytes(4).toString('hex');
  return {
    BUS: 'pubsub',
    PUBSUB_EMULATOR_HOST: inject('pubsubEmulatorHost'),
    GOOGLE_CLOUD_PROJECT: 'demo',
    NOTIFICATION_TOPIC: `objects-${id}`,
    LOADER_SUBSCRIPTION: `loader-${id}`,
    DEAD_LETTER_TOPIC: `dead-letter-${id}`,
    VALIDATOR_SUBSCRIPTION: `validator-${id}`,
    EXPORT_TOPIC: `exports-${id}`,
    EXPORT_SUBSCRIPTION: `exporter-${id}`,
    FLUSH_TOPIC: `flush-${id}`,
  };
}

export async function startTestPipeline(options: { dataDir?: string; env?: Record<string, string>; log?: Logger; specText?: string } = {}): Promise<TestPipeline> {
  const dataDir = options.dataDir ?? (await tempDir());
  // Suites about other things call the API without keys; test/ops/ turns AUTH back on.
  const config: Config = loadConfig({ DATA_DIR: dataDir, MIN_BACKOFF_MS: '20', MAX_BACKOFF_MS: '100', AUTH: 'off', ...options.env });
  const rt = await createRuntime(config, options.log ?? quietLogger());
  const pipeline = await startLocalPipeline(rt, 0, '127.0.0.1', options.specText);
  return {
    ...pipeline,
    rt,
    dataDir,
    env: options.env ?? {},
    async stop() {
      await pipeline.close();
      await rt.close();
    },
  };
}

/** Uploads `csv` as text/csv and waits until its rows are queryable; the upload's id. */
export async function uploadLoaded(p: TestPipeline, csv: string): Promise<string> {
  const answer = await fetch(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
  const { uploadId } = (await answer.json()) as { uploadId?: string };
  if (!uploadId) throw new Error(`the upload was answered ${answer.status}`);
  await eventually(async () => (((await (await fetch(`${p.url}/uploads/${uploadId}`)).json()) as { status?: string }).status === 'loaded' ? true : undefined), 20_000, `${uploadId} to load`);
  return uploadId;
}

/** Polls until `check` returns a value, or fails after `timeoutMs` (a safety net, not a performance assertion). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
