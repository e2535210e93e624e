/** `npm run replay` rebuilds the warehouse from incoming/ row for row, and running it again adds nothing. */
import { DuckDBInstance } from '@duckdb/node-api';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TABLE } from '../../functions/core/schema.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline } from '../support/pipeline.js';
import { send } from '../ingest/http.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every row but its load time, in lineage order. */
async function rows(dataDir: string): Promise<unknown[]> {
  const db = await DuckDBInstance.create(path.join(dataDir, 'warehouse.duckdb'), { access_mode: 'READ_ONLY' });
  const con = await db.connect();
  try {
    const result = await con.runAndReadAll(`SELECT * EXCLUDE (_loaded_at) FROM ${TABLE} ORDER BY _source_object, _source_generation, _source_line`);
    return result.getRowObjectsJson();
  } finally {
    con.closeSync();
    db.closeSync();
  }
}

const replay = (dataDir: string, ...args: string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/replay.ts'), ...args], { cwd: ROOT, env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' } }).toString();

describe('npm run replay', () => {
  it('rebuilds the warehouse from incoming/ row for row (--fresh), and a second run adds nothing', async () => {
    const p = await startTestPipeline();
    const ids: string[] = [];
    for (const seed of [1, 2, 3]) ids.push((await send(p.url, flightsCsv(40 + seed, seed))).body.uploadId);
    for (const id of ids) await eventually(async () => ((await p.rt.ledger.get(id))?.status === 'loaded' ? true : undefined));
    await p.stop();
    const before = await rows(p.dataDir);
    expect(before).toHaveLength(41 + 42 + 43);
    expect(replay(p.dataDir, '--fresh')).toMatch(/replayed 3 objects/);
    expect(await rows(p.dataDir)).toEqual(before);
    replay(p.dataDir);
    expect(await rows(p.dataDir)).toEqual(before);
  });
});
