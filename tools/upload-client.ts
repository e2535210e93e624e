/**
 * The client side of uploads, for the CLI (tools/flights-cli.ts) and the
 * tests: a small file goes inline to POST /upload; a large one asks POST
 * /uploads for a signed URL, starts a resumable session and PUTs the file in
 * Content-Range chunks, one bounded buffer at a time. The same code talks to
 * GCS and to the local gateway, which speak the same protocol.
 */
import { openAsBlob } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Under the 32 MB request cap of API Gateway and Cloud Functions, with room for the multipart envelope. */
export const INLINE_MAX_BYTES = 30_000_000;
/** GCS wants chunks in multiples of 256 KiB; 8 MiB keeps memory small and requests few. */
export const CHUNK_BYTES = 8 * 1024 * 1024;

export interface SignedUpload {
  uploadId: string;
  upload: { method: string; url: string; headers: Record<string, string>; expiresAt: string };
}

export interface UploadProgress {
  sent: number;
  total: number;
}

export interface ResumeOptions {
  chunkBytes?: number;
  onProgress?: (p: UploadProgress) => void;
  /** Attempts per chunk when the connection breaks; each resumes from what the server kept. */
  retries?: number;
}

/** An answer other than the one expected; `body` is the problem+json, when the server sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { detail?: string; errors?: { line?: number; column?: number; field?: string; reason?: string }[] } | undefined,
    message: string,
  ) {
    super(message);
  }
}

async function problem(res: Response, what: string): Promise<Error> {
  const text = await res.text();
  let body: ApiError['body'];
  try {
    body = JSON.parse(text) as ApiError['body'];
  } catch {
    body = undefined;
  }
  return new ApiError(res.status, body, `${what}: HTTP ${res.status} ${body?.detail ?? text}`);
}

/** The gateway's API key header, when there is a key (the signed storage URLs carry their own signature and take none). */
export const keyHeaders = (apiKey: string | undefined): Record<string, string> => (apiKey ? { 'x-api-key': apiKey } : {});

/** POST /uploads: the signed URL for a file of `size` bytes. */
export async function requestSignedUpload(api: string, intent: { fileName?: string; size: number; contentType: string; sha256?: string }, apiKey?: string): Promise<SignedUpload> {
  const res = await fetch(new URL('/uploads', api), { method: 'POST', headers: { 'content-type': 'application/json', ...keyHeaders(apiKey) }, body: JSON.stringify(intent) });
  if (res.status !== 201) throw await problem(res, 'POST /uploads');
  return (await res.json()) as SignedUpload;
}

/** Starts the resumable session through the signed URL, sending exactly the signed headers; returns the session URI. */
export async function startSession(signed: SignedUpload['upload']): Promise<string> {
  const res = await fetch(signed.url, { method: signed.method, headers: signed.headers });
  const location = res.headers.get('location');
  if (res.status !== 201 && res.status !== 200) throw await problem(res, 'starting the upload session');
  if (!location) throw new Error('the upload session has no Location');
  return new URL(location, signed.url).href;
}

/** How many bytes the session holds (`Content-Range: bytes *\/total`), or 'done' once the object is finalized. */
export async function sessionOffset(session: string, total: number): Promise<number | 'done'> {
  const res = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes */${total}` } });
  if (res.status === 200 || res.status === 201) return 'done';
  if (res.status !== 308) throw await problem(res, 'querying the upload session');
  const range = /^bytes=0-(\d+)$/.exec(res.headers.get('range') ?? '');
  return range ? Number(range[1]) + 1 : 0;
}

async function readChunk(file: string, start: number, length: number): Promise<Buffer> {
  const handle = await fs.open(file);
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Sends `file` into `session` from wherever the session stands; resumes after a broken connection. */
export async function resumeUpload(session: string, file: string, options: ResumeOptions = {}): Promise<void> {
  const total = (await fs.stat(file)).size;
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  let failures = 0;
  for (;;) {
    const offset = await sessionOffset(session, total);
    if (offset === 'done') return;
    options.onProgress?.({ sent: offset, total });
    const chunk = await readChunk(file, offset, Math.min(chunkBytes, total - offset));
    try {
      const res = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes ${offset}-${offset + chunk.length - 1}/${total}` }, body: chunk });
      if (res.status === 200 || res.status === 201) return options.onProgress?.({ sent: total, total });
      if (res.status !== 308) throw await problem(res, `uploading bytes ${offset}-`);
      failures = 0;
    } catch (e) {
      // A broken connection: the session keeps what arrived, and the next status query says where to go on.
      if (!(e instanceof TypeError) || ++failures > (options.retries ?? 5)) throw e;
      await sleep(250 * 2 ** failures);
    }
  }
}

/** The whole flow for one file: inline when small, signed and resumable when large. */
export async function uploadFile(api: string, file: string, options: ResumeOptions & { inlineMaxBytes?: number; apiKey?: string } = {}): Promise<{ uploadId: string; mode: 'inline' | 'signed' }> {
  const size = (await fs.stat(file)).size;
  if (size <= (options.inlineMaxBytes ?? INLINE_MAX_BYTES)) {
    // Multipart, so the file keeps its name; the Blob reads the file from disk as it is sent.
    const form = new FormData();
    form.append('file', await openAsBlob(file, { type: 'text/csv' }), path.basename(file));
    const res = await fetch(new URL('/upload', api), { method: 'POST', headers: keyHeaders(options.apiKey), body: form });
    // 200: the same rows were stored before; the answer names that upload (a duplicate).
    if (res.status !== 201 && res.status !== 200) throw await problem(res, 'POST /upload');
    return { uploadId: ((await res.json()) as { uploadId: string }).uploadId, mode: 'inline' };
  }
  const signed = await requestSignedUpload(api, { fileName: path.basename(file), size, contentType: 'text/csv' }, options.apiKey);
  const session = await startSession(signed.upload);
  await resumeUpload(session, file, options);
  return { uploadId: signed.uploadId, mode: 'signed' };
}
