/**
 * The check that ends every reliability scenario, read from the data
 * directory once the server is stopped (the warehouse file through DuckDB
 * itself, the bucket through the local store):
 * - every acknowledged file has exactly its rows in the warehouse, by lineage
 *   (`_source_object`), none lost;
 * - no (object, generation, line) twice, and no content stored as two objects;
 * - nothing left under staging/ or the store's tmp/;
 * - every upload record final (loaded, failed with a reason, duplicate);
 * - every refused upload was told why (a problem with a detail).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';
import { FsObjectStore } from '../../../functions/adapters/local/fs-store.js';
import { readJson } from '../../../functions/core/records.js';
import { TABLE } from '../../../functions/core/schema.js';
import { UPLOADS_PREFIX, type UploadRecord } from '../../../functions/core/uploads.js';

/** An upload the server answered 200/201: its rows must be in the warehouse, once. */
export interface Acknowledged {
  uploadId: string;
  /** The object holding the rows (the first upload's, for a duplicate). */
  object: string;
  rows: number;
}

/** An upload the server refused with a 4xx: it must say why. */
export interface Refused {
  status: number;
  detail?: string;
}

export interface Reconciliation {
  files: number;
  rows: number;
  /** Rows of acknowledged files missing from the warehouse. */
  lost: number;
  /** Rows beyond one per (object, generation, line), plus rows of content stored as a second object. */
  duplicated: number;
  leftovers: string[];
  unsettled: string[];
  unexplained: number;
}

const FINAL = new Set(['loaded', 'failed', 'duplicate']);

async function warehouseCounts(file: string): Promise<{ perObject: Map<string, number>; repeatedLines: number }> {
  const db = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const con = await db.connect();
  try {
    const perObject = new Map<string, number>();
    for (const row of (await con.runAndReadAll(`SELECT _source_object AS o, count(*)::INTEGER AS n FROM ${TABLE} GROUP BY 1`)).getRowObjects()) {
      perObject.set(String(row.o), Number(row.n));
    }
    const repeated = await con.runAndReadAll(
      `SELECT coalesce(sum(n - 1), 0)::INTEGER AS extra FROM (SELECT count(*) AS n FROM ${TABLE} GROUP BY _source_object, _source_generation, _source_line HAVING count(*) > 1)`,
    );
    return { perObject, repeatedLines: Number(repeated.getRowObjects()[0]!.extra) };
  } finally {
    con.closeSync();
    db.closeSync();
  }
}

export async function reconcile(dataDir: string, bucket: string, acknowledged: Acknowledged[], refused: Refused[]): Promise<Reconciliation> {
  const store = new FsObjectStore(path.join(dataDir, 'buckets'), bucket);
  const { perObject, repeatedLines } = await warehouseCounts(path.join(dataDir, 'warehouse.duckdb'));
  const expected = new Map(acknowledged.map((a) => [a.object, a.rows]));
  let lost = 0;
  for (const [object, rows] of expected) lost += Math.max(0, rows - (perObject.get(object) ?? 0));
  // The same content loaded from two objects: the sha256 of every stored upload record is unique.
  const records: UploadRecord[] = [];
  for await (const info of store.list(UPLOADS_PREFIX)) {
    const record = await readJson<UploadRecord>(store, info.name);
    if (record) records.push(record.value);
  }
  const loadedBySha = new Map<string, UploadRecord[]>();
  for (const r of records.filter((x) => x.status === 'loaded')) loadedBySha.set(r.sha256, [...(loadedBySha.get(r.sha256) ?? []), r]);
  const contentTwice = [...loadedBySha.values()].filter((rs) => rs.length > 1).reduce((n, rs) => n + rs.slice(1).reduce((m, r) => m + r.rows, 0), 0);
  const leftovers: string[] = [];
  for await (const info of store.list('staging/')) leftovers.push(info.name);
  const tmp = path.join(dataDir, 'buckets', bucket, 'tmp');
  if (fs.existsSync(tmp)) leftovers.push(...fs.readdirSync(tmp).map((f) => `tmp/${f}`));
  return {
    files: expected.size,
    rows: [...expected.values()].reduce((a, b) => a + b, 0),
    lost,
    duplicated: repeatedLines + contentTwice,
    leftovers,
    unsettled: records.filter((r) => !FINAL.has(r.status) || (r.status === 'failed' && !r.reason)).map((r) => `${r.uploadId}: ${r.status}`),
    unexplained: refused.filter((r) => !r.detail).length,
  };
}
