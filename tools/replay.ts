/**
 * `npm run replay`: (re)loads the warehouse from `incoming/`, the raw bucket
 * being the backup. Every object there is marked pending and flushed; the
 * warehouse's manifest, keyed by (object, generation), makes an object loaded
 * before add nothing, so a replay is idempotent, and a replay that was
 * interrupted resumes where it stopped when run again (its pending markers
 * are in the bucket). `--fresh` first moves the local warehouse file aside,
 * to rebuild it whole. Run it with the server stopped: DuckDB has one writer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../functions/core/config.js';
import { INCOMING_PREFIX } from '../functions/ingest/store-upload.js';
import { PendingFiles } from '../functions/loader/pending.js';
import { createRuntime, type Runtime } from '../functions/runtime.js';

/** Marks every `incoming/` object pending and flushes until none is; returns how many objects were seen. */
export async function replayIncoming(rt: Runtime): Promise<number> {
  const pending = new PendingFiles(rt.store);
  let objects = 0;
  for await (const info of rt.store.list(INCOMING_PREFIX)) {
    objects++;
    await pending.add({ object: info.name, generation: info.generation, ...(info.metadata.uploadId ? { uploadId: info.metadata.uploadId } : {}) });
  }
  while ((await pending.list(1)).length > 0) await rt.flush();
  return objects;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  if (process.argv.includes('--fresh')) {
    if (config.warehouse !== 'duckdb') throw new Error('--fresh rebuilds the local DuckDB file only; in the cloud, load into a new table instead');
    const file = path.join(config.dataDir, 'warehouse.duckdb');
    if (fs.existsSync(file)) fs.renameSync(file, `${file}.before-replay-${Date.now()}`);
  }
  const rt = await createRuntime(config);
  const objects = await replayIncoming(rt);
  await rt.close();
  console.log(`replayed ${objects} objects from ${INCOMING_PREFIX}`);
}
