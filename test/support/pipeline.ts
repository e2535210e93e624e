/** Starts the whole embedded pipeline on a fresh data directory and a free loopback port. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { createLogger, type Logger } from '../../functions/core/logger.js';
import { startLocalPipeline, type LocalPipeline } from '../../functions/local/pipeline.js';
import { createRuntime, type Runtime } from '../../functions/runtime.js';

export interface TestPipeline extends LocalPipeline {
  rt: Runtime;
  dataDir: string;
  /** Stops everything; the data directory stays for a restart. */
  stop(): Promise<void>;
}

export const tempDir = (prefix = 'flights-'): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), prefix));

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

export async function startTestPipeline(options: { dataDir?: string; env?: Record<string, string>; log?: Logger } = {}): Promise<TestPipeline> {
  const dataDir = options.dataDir ?? (await tempDir());
  const config: Config = loadConfig({ DATA_DIR: dataDir, MIN_BACKOFF_MS: '20', MAX_BACKOFF_MS: '100', ...options.env });
  const rt = await createRuntime(config, options.log ?? quietLogger());
  const pipeline = await startLocalPipeline(rt, 0, '127.0.0.1');
  return {
    ...pipeline,
    rt,
    dataDir,
    async stop() {
      await pipeline.close();
      await rt.close();
    },
  };
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
