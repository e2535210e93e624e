/**
 * A client that does what the API asks of a careful one: every file is sent
 * with an Idempotency-Key of its own, and sent again (same key, same bytes)
 * after a dropped connection, a 5xx, a 409 or a 429, until it is answered
 * 200/201 (acknowledged) or another 4xx (refused).
 */
import { send } from '../../ingest/http.js';
import type { Acknowledged, Refused } from './reconciliation.js';

export type Outcome = { acknowledged: Acknowledged; attempts: number } | { refused: Refused; attempts: number };

/** `url()` is asked at each attempt: the server may have moved to a new port after a restart. */
export async function uploadUntilAnswered(url: () => string, csv: string, key: string, deadline = Date.now() + 120_000): Promise<Outcome> {
  for (let attempts = 1; ; attempts++) {
    const reply = await send(url(), csv, { 'idempotency-key': key }).catch(() => undefined);
    if (reply && (reply.status === 200 || reply.status === 201)) {
      const body = reply.body as { uploadId: string; object: string; rows: number };
      return { acknowledged: { uploadId: body.uploadId, object: body.object, rows: body.rows }, attempts };
    }
    if (reply && reply.status >= 400 && reply.status < 500 && ![409, 429].includes(reply.status)) {
      return { refused: { status: reply.status, detail: (reply.body as { detail?: string }).detail }, attempts };
    }
    if (Date.now() > deadline) throw new Error(`no answer for ${key} after ${attempts} attempts (last: ${reply?.status ?? 'no connection'})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
