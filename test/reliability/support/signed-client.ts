/**
 * A careful client of the signed, resumable path, for the kill run: it asks
 * POST /uploads for a URL (same Idempotency-Key on every attempt), starts a
 * session, PUTs the file in small chunks, and after any dropped connection or
 * 5xx asks the session what it kept and goes on from there (a session the
 * server no longer knows is started anew through the same signed URL). Then
 * it polls GET /uploads/{id} until the upload is final: loaded
 * (acknowledged), or failed with a reason (refused).
 *
 * The server moves to a new port at each restart: signed URLs and session
 * URIs are sent to the current origin, which the signature does not cover.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sessionOffset, type SignedUpload } from '../../../tools/upload-client.js';
import type { Outcome } from './client.js';

/** Small enough that a 1–2 KB file takes several PUTs, so kills land between chunks as well as in them. */
const CHUNK_BYTES = 400;

const rebase = (url: string, origin: string): string => {
  const u = new URL(url);
  const o = new URL(origin);
  u.protocol = o.protocol;
  u.host = o.host;
  return u.href;
};

/** A transient answer: the server is restarting or was killed mid-request. */
const transient = (status: number | undefined): boolean => status === undefined || status >= 500 || status === 409 || status === 429;

async function requestUrl(url: () => string, size: number, key: string, deadline: number): Promise<{ signed: SignedUpload; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const res = await fetch(new URL('/uploads', url()), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ size, contentType: 'text/csv', fileName: `${key}.csv` }),
    }).catch(() => undefined);
    if (res && (res.status === 201 || res.status === 200)) return { signed: (await res.json()) as SignedUpload, attempts };
    const body = await res?.text().catch(() => '');
    if (res && !transient(res.status)) throw new Error(`POST /uploads for ${key} answered ${res.status}: ${body}`);
    if (Date.now() > deadline) throw new Error(`no signed URL for ${key} after ${attempts} attempts (last: ${res?.status ?? 'no connection'})`);
    await sleep(100);
  }
}

/** Starts a session through the signed URL; undefined when the server did not answer it. */
async function startSession(signed: SignedUpload['upload'], origin: string): Promise<string | undefined> {
  const res = await fetch(rebase(signed.url, origin), { method: signed.method, headers: signed.headers }).catch(() => undefined);
  const location = res?.headers.get('location');
  if (res?.status === 201 && location) return location;
  if (res && !transient(res.status)) throw new Error(`starting a session answered ${res.status}: ${await res.text()}`);
  return undefined;
}

/** Sends every byte into a session, surviving kills; returns how many requests failed on the way. */
async function sendBytes(url: () => string, signed: SignedUpload, bytes: Buffer, deadline: number): Promise<number> {
  let session: string | undefined;
  let failures = 0;
  let lastFailure = '';
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${signed.uploadId}: bytes not all taken before the deadline (${failures} failed requests, the last: ${lastFailure})`);
    const origin = url();
    try {
      session ??= await startSession(signed.upload, origin);
      if (!session) throw new Error('no session');
      const offset = await sessionOffset(rebase(session, origin), bytes.length).catch((e: { status?: number }) => {
        // The session's record never reached the disk: a new session through the same URL.
        if (e.status === 404) session = undefined;
        throw e;
      });
      if (offset === 'done') return failures;
      const chunk = bytes.subarray(offset, offset + CHUNK_BYTES);
      const res = await fetch(rebase(session, origin), { method: 'PUT', headers: { 'content-range': `bytes ${offset}-${offset + chunk.length - 1}/${bytes.length}` }, body: chunk });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 201) return failures;
      if (res.status !== 308) throw Object.assign(new Error(`PUT answered ${res.status}`), { status: res.status });
      await sleep(20);
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status !== undefined && !transient(status) && status !== 404) throw new Error(`${signed.uploadId}: ${(e as Error).message}`);
      failures++;
      lastFailure = `${status ?? ''} ${(e as Error).message} (${String((e as Error).cause ?? '')})`;
      await sleep(100);
    }
  }
}

interface UploadStatus {
  status: string;
  object?: string;
  reason?: string;
  duplicateOf?: string;
}

async function settled(url: () => string, uploadId: string, deadline: number): Promise<UploadStatus> {
  for (let last = 'no answer'; ; ) {
    const res = await fetch(new URL(`/uploads/${uploadId}`, url())).catch(() => undefined);
    const body = res?.ok ? ((await res.json()) as UploadStatus) : undefined;
    if (body && ['loaded', 'failed', 'duplicate'].includes(body.status)) return body;
    last = body?.status ?? last;
    if (Date.now() > deadline) throw new Error(`signed upload ${uploadId} is still ${last} after all its bytes were taken`);
    await sleep(100);
  }
}

/** `rows`: the data lines the client sent, which a loaded upload must have in the warehouse. */
export async function signedUploadUntilSettled(url: () => string, csv: string, rows: number, key: string, deadline = Date.now() + 120_000): Promise<Outcome> {
  const bytes = Buffer.from(csv);
  const { signed, attempts } = await requestUrl(url, bytes.length, key, deadline);
  const failures = await sendBytes(url, signed, bytes, deadline);
  const final = await settled(url, signed.uploadId, deadline);
  const tries = attempts + failures;
  if (final.status === 'failed') return { refused: { status: 422, ...(final.reason ? { detail: final.reason } : {}) }, attempts: tries };
  if (final.status === 'duplicate') throw new Error(`signed upload ${signed.uploadId} of unique content ended as a duplicate of ${final.duplicateOf}`);
  return { acknowledged: { uploadId: signed.uploadId, object: final.object!, rows }, attempts: tries };
}
