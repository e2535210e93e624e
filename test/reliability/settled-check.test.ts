/**
 * The check that ends a scenario while start:emulators runs looks at a moving
 * system: a flush commits its files' rows, then records each upload `loaded`
 * (loader/flush.ts settle). Between the two the warehouse holds the rows of an
 * upload whose record still says `loading`. The check must wait out that
 * window, not report it as an upload left unsettled (what made the shuffled
 * redelivery scenario fail about half its runs), and still report a record
 * that stays `loading`. Here the flush is held between its commit and its
 * settle, so the window is as long as the test needs.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedDuckDbWarehouse } from '../../functions/adapters/duckdb/shared.js';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { JsonRecords } from '../../functions/core/records.js';
import { UPLOADS_PREFIX, type UploadRecord } from '../../functions/core/uploads.js';
import { incomingName } from '../../functions/ingest/store-upload.js';
import { flushPending } from '../../functions/loader/flush.js';
import { PendingFiles } from '../../functions/loader/pending.js';
import { canonicalOf } from '../support/canonical.js';
import { flightsCsv } from '../support/generate-flights.js';
import { quietLogger, tempDir } from '../support/pipeline.js';
import { reconcileSettled } from './support/emulators.js';

const BUCKET = 'settled-check';

/** The upload ledger, its updates held until `release()`: a flush stopped between its warehouse commit and its settle. */
class HeldLedger extends JsonRecords<UploadRecord> {
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  private settling!: () => void;
  /** Resolves when the flush has committed and starts its settle. */
  readonly reached = new Promise<void>((resolve) => (this.settling = resolve));

  override async update(id: string, change: (current: UploadRecord) => Partial<UploadRecord>): Promise<UploadRecord | undefined> {
    this.settling();
    await this.gate;
    return super.update(id, change);
  }
}

let closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

describe('the reconciliation of a running set', () => {
  it('waits for the settle of a flush that has committed its rows, and reports a record that stays loading', async () => {
    const dataDir = await tempDir();
    const store = new FsObjectStore(path.join(dataDir, 'buckets'), BUCKET, { crossProcess: true });
    const warehouse = new SharedDuckDbWarehouse(path.join(dataDir, 'warehouse.duckdb'));
    await warehouse.init();
    const bus = new DurableLocalBus(path.join(dataDir, 'bus'));
    closing.push(() => bus.close(), () => warehouse.close());
    const ledger = new HeldLedger(store, UPLOADS_PREFIX);

    // An upload as the loader's handler leaves it: object in incoming/, marked pending, its record `loading`.
    const uploadId = 'held-settle';
    const object = incomingName(uploadId);
    const csv = Buffer.from(await canonicalOf(flightsCsv(7, 41_000)));
    const info = await store.write(object, csv, { contentType: 'text/csv', metadata: { uploadId } });
    const now = new Date().toISOString();
    const sha256 = createHash('sha256').update(csv).digest('hex');
    await new JsonRecords<UploadRecord>(store, UPLOADS_PREFIX).create(uploadId, {
      uploadId, status: 'loading', generation: info.generation, object, bytes: csv.length, rows: 7, sha256, createdAt: now, updatedAt: now,
    });
    await new PendingFiles(store).add({ object, generation: info.generation, uploadId, bytes: csv.length });
    const files = [{ uploadId, object, rows: 7 }];

    const settings = { spacingMs: 0, leaseMs: 60_000, maxBatchBytes: Number.POSITIVE_INFINITY, maxFailures: 5, deadLetterTopic: 'dead-letter' };
    const flush = flushPending({ store, bus, warehouse, ledger, log: quietLogger(), settings });
    await ledger.reached;

    // The window: every row in, the record not yet final. The check may not end the scenario on it.
    await expect(reconcileSettled(dataDir, BUCKET, files, 300)).rejects.toThrow(`${uploadId}: loading`);

    const settled = reconcileSettled(dataDir, BUCKET, files, 60_000);
    ledger.release();
    expect((await flush).loaded).toBe(1);
    expect(await settled).toMatchObject({ files: 1, rows: 7, lost: 0, duplicated: 0, unsettled: [] });
  });
});
