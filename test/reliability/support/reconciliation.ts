/**
 * The check that ends every reliability scenario, read from the data
 * directory once the server is stopped (the warehouse file through DuckDB
 * itself, the bucket through the local store):
 * - every acknowledged file has exactly its rows in the warehouse, by lineage
 *   (`_source_object`), none lost;
 * - no (object, generation, line) twice, and no content stored as two objects;
 * - nothing left under staging/ or the store's tmp/;
 * - every upload record final (loaded, failed with a reason, duplicate);
 * - every refused upload was told why (a problem with a detail);
 * - every export final: `done` with files that read to their end and hold
 *   the rows its status says, or `failed` with a reason;
 * - no raw bytes left under landing/, no part file of a finished resumable
 *   session, no export scratch file beside the warehouse.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { parse } from 'csv-parse';
import fs from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { FsObjectStore } from '../../../functions/adapters/local/fs-store.js';
import { EXPORTS_PREFIX, type ExportRecord } from '../../../functions/core/exports.js';
import { LANDING_PREFIX, SIGNED_UPLOADS_PREFIX, type SignedUploadRecord } from '../../../functions/core/landing.js';
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
  /** Exports: how many ended done and failed, and those neither final nor whole (with why). */
  exports: { done: number; failed: number; broken: string[] };
}

/** DuckDB's export scratch directory (adapters/duckdb/warehouse.ts), beside the warehouse file. */
const EXPORT_SCRATCH = 'warehouse.duckdb.exports';

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

/** Data rows of a stored gzip CSV; throws if the file does not read to its end (a truncated gzip). */
async function csvRows(store: FsObjectStore, name: string): Promise<number> {
  let rows = 0;
  for await (const _row of store.read(name).pipe(createGunzip()).pipe(parse({ columns: true }))) rows++;
  return rows;
}

/** Why a done export is not whole, if it is not: its files as listed, each read to its end, with its row count. */
async function exportFault(store: FsObjectStore, record: ExportRecord): Promise<string | undefined> {
  if (record.status === 'failed') return record.reason ? undefined : 'failed without a reason';
  if (record.status !== 'done') return record.status;
  const listed = (record.files ?? []).map((f) => f.name).sort();
  const stored: string[] = [];
  for await (const info of store.list(`${EXPORTS_PREFIX}${record.exportId}/`)) stored.push(info.name);
  if (JSON.stringify(stored.sort()) !== JSON.stringify(listed)) return `files ${JSON.stringify(stored)} stored, ${JSON.stringify(listed)} listed`;
  let rows = 0;
  for (const name of listed) {
    const counted = await csvRows(store, name).catch((e: unknown) => e as Error);
    if (counted instanceof Error) return `${name} does not read to its end: ${counted.message}`;
    rows += counted;
  }
  return rows === record.rows ? undefined : `${rows} rows in its files, ${record.rows} in its status`;
}

async function exportsOf(store: FsObjectStore): Promise<Reconciliation['exports']> {
  const summary: Reconciliation['exports'] = { done: 0, failed: 0, broken: [] };
  for await (const info of store.list(EXPORTS_PREFIX)) {
    if (!/^exports\/[^/]+\.json$/.test(info.name)) continue;
    const record = (await readJson<ExportRecord>(store, info.name))!.value;
    const fault = await exportFault(store, record);
    if (fault) summary.broken.push(`${record.exportId}: ${fault}`);
    else summary[record.status as 'done' | 'failed']++;
  }
  return summary;
}

/**
 * Signed uploads still `validating` (no run will finish them) or failed without a reason. One still
 * `awaiting` is not stuck: its URL may simply not have been used (a client retried POST /uploads
 * after a kill and got another); the clients check that the uploads they sent were settled.
 */
async function stuckSignedUploads(store: FsObjectStore): Promise<string[]> {
  const stuck: string[] = [];
  for await (const info of store.list(SIGNED_UPLOADS_PREFIX)) {
    const r = (await readJson<SignedUploadRecord>(store, info.name))?.value;
    if (r && (r.status === 'validating' || (r.status === 'failed' && !r.reason))) stuck.push(`signed ${r.uploadId}: ${r.status}`);
  }
  return stuck;
}

/** Part files of resumable sessions that finished (their bytes are the object now), and the exporter's scratch files. */
function localLeftovers(dataDir: string): string[] {
  const sessions = path.join(dataDir, 'upload-sessions');
  const finished = (f: string): boolean => {
    const state = path.join(sessions, f.replace(/\.part$/, '.json'));
    return fs.existsSync(state) && 'object' in (JSON.parse(fs.readFileSync(state, 'utf8')) as object);
  };
  const parts = fs.existsSync(sessions) ? fs.readdirSync(sessions).filter((f) => f.endsWith('.part') && finished(f)) : [];
  const scratch = path.join(dataDir, EXPORT_SCRATCH);
  return [...parts.map((f) => `upload-sessions/${f}`), ...(fs.existsSync(scratch) ? fs.readdirSync(scratch).map((f) => `${EXPORT_SCRATCH}/${f}`) : [])];
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
  for (const prefix of ['staging/', LANDING_PREFIX]) for await (const info of store.list(prefix)) leftovers.push(info.name);
  const tmp = path.join(dataDir, 'buckets', bucket, 'tmp');
  if (fs.existsSync(tmp)) leftovers.push(...fs.readdirSync(tmp).map((f) => `tmp/${f}`));
  leftovers.push(...localLeftovers(dataDir));
  return {
    files: expected.size,
    rows: [...expected.values()].reduce((a, b) => a + b, 0),
    lost,
    duplicated: repeatedLines + contentTwice,
    leftovers,
    unsettled: [
      ...records.filter((r) => !FINAL.has(r.status) || (r.status === 'failed' && !r.reason)).map((r) => `${r.uploadId}: ${r.status}`),
      ...(await stuckSignedUploads(store)),
    ],
    unexplained: refused.filter((r) => !r.detail).length,
    exports: await exportsOf(store),
  };
}
