import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DuckDbWarehouse } from '../../functions/adapters/duckdb/warehouse.js';
import { loadConfig, VALIDATION_THREAD_MIN_BYTES } from '../../functions/core/config.js';
import { createRuntime } from '../../functions/runtime.js';
import { quietLogger } from '../support/pipeline.js';

describe('configuration', () => {
  it('runs everything embedded by default and everything on Google Cloud with PROFILE=cloud', () => {
    expect(loadConfig({})).toMatchObject({ store: 'local', bus: 'local', warehouse: 'duckdb', flushSpacingMs: 0, port: 8080, host: '127.0.0.1' });
    expect(loadConfig({ PROFILE: 'cloud' })).toMatchObject({ store: 'gcs', bus: 'pubsub', warehouse: 'bigquery', flushSpacingMs: 60_000 });
    expect(loadConfig({ PROFILE: 'cloud', BUS: 'local' }).bus).toBe('local');
  });

  it('names the variable and the allowed values when a setting is wrong', () => {
    expect(() => loadConfig({ WAREHOUSE: 'postgres' })).toThrow('WAREHOUSE must be one of duckdb, bigquery, got "postgres"');
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow('PORT must be an integer');
  });

  it('refuses a store the warehouse cannot read from, before touching anything', async () => {
    await expect(createRuntime(loadConfig({ STORE: 'gcs' }), quietLogger())).rejects.toThrow('STORE=gcs cannot feed WAREHOUSE=duckdb');
  });

  it('requires a cursor secret in the cloud, where instances must agree on it', async () => {
    await expect(createRuntime(loadConfig({ PROFILE: 'cloud' }), quietLogger())).rejects.toThrow('CURSOR_SECRET must be set');
  });

  it('validates on a thread of its own locally when there is a second core, and in the cloud only when told', () => {
    expect(loadConfig({}).ingest.validationThreads).toBe(os.availableParallelism() > 1 ? 1 : 0);
    expect(loadConfig({ PROFILE: 'cloud' }).ingest.validationThreads).toBe(0);
    expect(loadConfig({ PROFILE: 'cloud', VALIDATION_THREADS: '2' }).ingest.validationThreads).toBe(2);
    expect(loadConfig({ VALIDATION_THREADS: '0' }).ingest.validationThreads).toBe(0);
    expect(loadConfig({}).ingest.validationThreadMinBytes).toBe(VALIDATION_THREAD_MIN_BYTES);
    expect(loadConfig({ VALIDATION_THREAD_MIN_BYTES: '0' }).ingest.validationThreadMinBytes).toBe(0);
  });

  it('gives the embedded DuckDB the threads DUCKDB_THREADS names (unset: 0, DuckDB default)', async () => {
    expect(loadConfig({}).duckDbThreads).toBe(0);
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'config-threads-'));
    const rt = await createRuntime(loadConfig({ DATA_DIR: dataDir, DUCKDB_THREADS: '1' }), quietLogger());
    try {
      const threads = await (rt.warehouse as DuckDbWarehouse).run("SELECT current_setting('threads')::INTEGER AS threads");
      expect(threads.rows).toEqual([{ threads: 1 }]);
    } finally {
      await rt.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
