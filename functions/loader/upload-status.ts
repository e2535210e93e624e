/**
 * The loader's writes of an upload's status: `loading` once its file is pending (markLoading), `loaded`
 * once its rows are in (markLoaded). The record as markLoading wrote it is kept, by upload id, for the
 * flush of the same runtime: markLoaded writes over that generation without reading the record again.
 * It is a compare-and-swap all the same: a record anyone changed since (another instance, a dead
 * letter, a failed attempt's reason) fails its precondition, and is then read and updated as
 * JsonRecords.update does (JsonRecords.replace, amend). In the cloud the handler and the flush are separate instances: nothing is
 * kept, and every update reads.
 */
import type { Versioned } from '../core/records.js';
import type { UploadLedger, UploadRecord } from '../core/uploads.js';

/** Records kept per ledger at most, oldest dropped first: a file another instance settles leaves its record here. */
const MAX_KEPT = 10_000;
const kept = new WeakMap<UploadLedger, Map<string, Versioned<UploadRecord>>>();

function keep(ledger: UploadLedger, uploadId: string, record: Versioned<UploadRecord>): void {
  let records = kept.get(ledger);
  if (!records) kept.set(ledger, (records = new Map()));
  records.delete(uploadId);
  records.set(uploadId, record);
  if (records.size > MAX_KEPT) records.delete(records.keys().next().value!);
}

function take(ledger: UploadLedger, uploadId: string): Versioned<UploadRecord> | undefined {
  const records = kept.get(ledger);
  const record = records?.get(uploadId);
  records?.delete(uploadId);
  return record;
}

/** A flush may have loaded the file (and removed its marker) since it was marked pending: a `loaded` of this generation is kept. */
const loading =
  (generation: string) =>
  (r: UploadRecord): Partial<UploadRecord> =>
    r.status === 'loaded' && r.generation === generation ? {} : { status: 'loading', generation };

/** Records that an upload's file is pending load, after its marker was added. */
export async function markLoading(ledger: UploadLedger, uploadId: string, generation: string): Promise<void> {
  const next = await ledger.amend(uploadId, loading(generation));
  if (next) keep(ledger, uploadId, next);
}

/** Records an upload's rows loaded (`rows`, undefined for a file loaded before); the record as written, undefined if there is none. */
export async function markLoaded(ledger: UploadLedger, uploadId: string, generation: string, rows: number | undefined): Promise<UploadRecord | undefined> {
  const change: Partial<UploadRecord> = { status: 'loaded', generation, loadedRows: rows, reason: undefined };
  const known = take(ledger, uploadId);
  const next = known && (await ledger.replace(uploadId, known, change));
  return next ? next.value : ledger.update(uploadId, () => change);
}
