/**
 * The exporter's CloudEvent function (Pub/Sub trigger on the exports topic):
 * runs the export recorded by POST /exports through the warehouse and records
 * the outcome. A message for an export that is no longer running is a
 * redelivery and is acknowledged as is.
 *
 * Two messages for one export (a redelivery, or the requeue of
 * exports/recovery.ts) run one after the other in this process, so the second
 * finds the export settled: run side by side, each would write the file and
 * the record could end with one run's row count and the other's file.
 *
 * A failed export is recorded as failed and acknowledged rather than retried:
 * the causes seen in practice (bytes-billed limit, a job timeout, a removed
 * column) would fail again, and the client can POST the export anew. An
 * outage (the bucket or BigQuery unavailable, or a job BigQuery failed itself)
 * is not the export's fault: it stays running and the message is redelivered;
 * if Pub/Sub gives up on it, the reconcile tick queues it again.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { exportFilesPrefix, exportJobId, type ExportFile } from '../core/exports.js';
import { KeyedQueue } from '../core/keyed-queue.js';
import { unavailable } from '../core/http.js';
import { WarehouseJobError } from '../core/ports.js';
import { UPLOAD_ID } from '../core/ids.js';
import { fromCloudEvent } from '../core/notification.js';
import type { Runtime } from '../runtime.js';

/** Undefined for anything that is not an export request: retrying cannot make it one. */
function exportIdOf(event: CloudEvent<unknown>): string | undefined {
  try {
    const { exportId } = JSON.parse(fromCloudEvent(event.data).data.toString('utf8')) as { exportId?: unknown };
    return typeof exportId === 'string' && UPLOAD_ID.test(exportId) ? exportId : undefined;
  } catch {
    return undefined;
  }
}

/** What the client is told: BigQuery's own reason is actionable (e.g. the bytes-billed limit); anything else is ours. */
const failureReason = (e: unknown): string =>
  e instanceof WarehouseJobError ? `${e.reason}: ${e.message}` : 'the export failed on the server; it has been logged';

export function exportRunner(rt: Runtime) {
  const perExport = new KeyedQueue();
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const exportId = exportIdOf(event);
    if (!exportId) return void rt.log.error({ eventId: event.id }, 'export message without a valid export id; dropped');
    await perExport.run(exportId, () => runExport(rt, exportId));
  };
}

async function runExport(rt: Runtime, exportId: string): Promise<void> {
  const record = await rt.exports.get(exportId);
  if (record?.status !== 'running') return;
  const prefix = exportFilesPrefix(exportId);
  try {
    const { rows } = await rt.warehouse.exportCsv(record.query, record.columns, { store: rt.store, prefix, jobId: exportJobId(exportId) });
    const files: ExportFile[] = [];
    for await (const info of rt.store.list(prefix)) files.push({ name: info.name, bytes: info.size });
    await rt.exports.update(exportId, () => ({ status: 'done', rows, files }));
    rt.log.info({ exportId, rows, files: files.length }, 'export done');
  } catch (e) {
    if (unavailable(e)) {
      rt.log.warn({ exportId, err: e }, 'export interrupted by an outage; it will be retried');
      throw e;
    }
    rt.log.error({ exportId, err: e }, 'export failed');
    await rt.exports.update(exportId, () => ({ status: 'failed', reason: failureReason(e) }));
  }
}
