/**
 * A careful client of POST /exports, for the kill run: it starts an export
 * (again after a dropped connection or a 5xx), polls it until it is no longer
 * running, and POSTs it anew when it ended `failed` (what a failed export
 * asks of a client). A `done` export is downloaded and read to its end: every
 * row must match the filter and the rows must number what the status says.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { exportedRows, type ExportStatus } from '../../support/exports.js';

export interface ExportOutcome {
  exportId: string;
  /** Rows in the downloaded files. */
  rows: number;
  /** Exports that ended `failed` and were asked for again. */
  failed: string[];
  /** Requests that found no server (killed, restarting). */
  dropped: number;
}

async function start(url: () => string, query: string): Promise<string | undefined> {
  const res = await fetch(new URL(`/exports?${query}`, url()), { method: 'POST' }).catch(() => undefined);
  if (res?.status === 202) return ((await res.json()) as ExportStatus).exportId;
  if (res && res.status < 500) throw new Error(`POST /exports answered ${res.status}: ${await res.text()}`);
  return undefined;
}

async function poll(url: () => string, exportId: string): Promise<ExportStatus | undefined> {
  const res = await fetch(new URL(`/exports/${exportId}`, url())).catch(() => undefined);
  if (!res) return undefined;
  if (!res.ok) throw new Error(`GET /exports/${exportId} answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as ExportStatus;
  return body.status === 'running' ? undefined : body;
}

/** Rows of a done export, read through its signed URLs on the current origin; throws on a truncated file or a row outside `matches`. */
async function countRows(url: () => string, done: ExportStatus, matches: (row: Record<string, string>) => boolean): Promise<number> {
  const origin = new URL(url());
  const files = done.files!.map((f) => {
    const u = new URL(f.url);
    u.host = origin.host;
    return { ...f, url: u.href };
  });
  let rows = 0;
  for await (const row of exportedRows(files)) {
    if (!matches(row)) throw new Error(`export ${done.exportId} holds a row outside its filter: ${JSON.stringify(row)}`);
    rows++;
  }
  if (rows !== done.rows) throw new Error(`export ${done.exportId} says ${done.rows} rows; its files hold ${rows}`);
  return rows;
}

export async function exportUntilDone(url: () => string, query: string, matches: (row: Record<string, string>) => boolean, deadline = Date.now() + 120_000): Promise<ExportOutcome> {
  const failed: string[] = [];
  let dropped = 0;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no export of ${query} done before the deadline (${failed.length} failed, ${dropped} dropped requests)`);
    const exportId = await start(url, query);
    if (!exportId) {
      dropped++;
      await sleep(100);
      continue;
    }
    for (;;) {
      const status = await poll(url, exportId);
      if (status?.status === 'done') {
        // A download cut by a kill is the client's to repeat; a truncated file is the server's fault and throws from the gunzip.
        for (;;) {
          try {
            return { exportId, rows: await countRows(url, status, matches), failed, dropped };
          } catch (e) {
            if (!(e instanceof TypeError) && !/answered 5\d\d|ECONNRESET|socket/.test(String(e))) throw e;
            dropped++;
            await sleep(100);
          }
        }
      }
      if (status?.status === 'failed') {
        if (!status.reason) throw new Error(`export ${exportId} failed without a reason`);
        failed.push(exportId);
        break;
      }
      if (Date.now() > deadline) throw new Error(`export ${exportId} still running at the deadline`);
      await sleep(100);
    }
  }
}
