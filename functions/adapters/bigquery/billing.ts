/**
 * What a load job may bill, from the bytes of the files it reads, and how
 * many bytes of files one batch may hold so its bill stays under the
 * configured cap. Pure arithmetic, so the loader can size batches without
 * loading the BigQuery client.
 *
 * The load script (warehouse.ts) reads the CSV files once (billed at their
 * size) into a temporary table, then reads that table three times: the
 * partition check (3 integer columns), the INSERT (every column) and the
 * per-file counts (one column). A flight row is ~110 bytes of CSV and ~230
 * bytes in BigQuery's storage format (8 per number, 2 + length per string,
 * plus the `_FILE_NAME` URI), so the reads come to about 1 + 2.1 + 0.6 + 0.2
 * times the CSV bytes. 4× covers that; the fixed part covers the manifest
 * reads and the 10 MB minimum BigQuery bills per table per statement.
 */
export const BILLED_PER_SOURCE_BYTE = 4;
export const LOAD_FIXED_BYTES = 1024 ** 3;

export const loadBytesBilled = (sourceBytes: number): number => LOAD_FIXED_BYTES + BILLED_PER_SOURCE_BYTE * sourceBytes;

/** Largest batch (bytes of CSV) whose bill fits `maximumBytesBilled`; a larger single file still loads alone, billed for its size. */
export const maxBatchBytes = (maximumBytesBilled: number): number => Math.max(0, Math.floor((maximumBytesBilled - LOAD_FIXED_BYTES) / BILLED_PER_SOURCE_BYTE));
