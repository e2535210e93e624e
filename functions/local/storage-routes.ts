/**
 * The local bucket's side door: what storage.googleapis.com does for a signed
 * URL, served by the local gateway next to the API. A request is verified
 * against its signature (method, object, expiry and signed headers) before
 * anything else; a tampered or expired URL is answered 403 problem+json.
 * A signed POST starts a resumable session (201, Location: the session URI);
 * the session URI takes PUTs with Content-Range as GCS's XML API does.
 */
import express, { type Request, type Response } from 'express';
import type { ResumableSessions, ChunkRange, Progress } from '../adapters/local/resumable.js';
import { SIGNED_PATH } from '../adapters/local/url-signer.js';
import { methodNotAllowed, notFound, sendError } from '../core/http.js';
import type { Logger } from '../core/logger.js';
import type { ObjectStore } from '../core/ports.js';
import type { LocalBucket } from '../runtime.js';
import { Problem } from '../core/problem.js';

const FORBIDDEN: Record<'malformed' | 'expired' | 'signature', [string, string]> = {
  malformed: ['signature-mismatch', 'The URL is not a signed URL of this bucket.'],
  signature: ['signature-mismatch', 'The signature does not match this request: the URL was altered, or the method or a signed header (content type, size) differs from what was signed.'],
  expired: ['url-expired', 'The signed URL has expired; ask the API for a new one.'],
};

/** `/<bucket>/<name…>` with each segment percent-encoded. */
function target(req: Request): { bucket: string; name: string } {
  try {
    const [bucket = '', ...name] = req.path.slice(1).split('/').map(decodeURIComponent);
    return { bucket, name: name.join('/') };
  } catch {
    throw new Problem(400, 'malformed-url', 'Bad Request', 'The object path is not valid percent-encoding.');
  }
}

async function download(store: ObjectStore, name: string, res: Response): Promise<void> {
  const info = await store.stat(name);
  if (!info) throw notFound(`No such object: ${name}.`);
  res.status(200).set({ 'content-type': info.contentType, 'content-length': String(info.size), 'x-goog-generation': info.generation });
  res.attachment(name.split('/').pop() ?? name);
  const body = store.read(name, { generation: info.generation });
  body.on('error', (e) => res.destroy(e));
  body.pipe(res);
}

export const SESSION_PATH = '/storage/sessions/';

/** `bytes a-b/N`, `bytes a-b/*`, `bytes *\/N`; no header means the whole upload in one request. */
function chunkRange(header: string | undefined): ChunkRange {
  if (header === undefined) return { start: 0 };
  const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(header.trim());
  if (!m) throw new Problem(400, 'invalid-content-range', 'Bad Request', 'Content-Range must be "bytes <first>-<last>/<total or *>", or "bytes */<total or *>" to ask what has arrived.');
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined) return total === undefined ? {} : { total };
  const [first, last] = [Number(m[1]), Number(m[2])];
  if (last < first || (total !== undefined && last >= total)) throw new Problem(400, 'invalid-content-range', 'Bad Request', `Content-Range ${header} is not a valid range.`);
  return { start: first, ...(total !== undefined ? { total } : {}) };
}

/** 308 with the bytes kept so far, or 200 with the finalized object, as GCS answers. */
function answer(res: Response, progress: Progress): void {
  if (progress.done) return void res.status(200).json(progress.object);
  if (progress.received > 0) res.setHeader('Range', `bytes=0-${progress.received - 1}`);
  res.status(308).end();
}

async function startSession(sessions: ResumableSessions, name: string, req: Request, res: Response): Promise<void> {
  if (req.get('x-goog-resumable') !== 'start') throw new Problem(400, 'not-resumable', 'Bad Request', 'Start a resumable upload with the header x-goog-resumable: start.');
  const size = req.get('x-upload-content-length');
  if (size !== undefined && !/^\d{1,15}$/.test(size)) throw new Problem(400, 'invalid-size', 'Bad Request', 'X-Upload-Content-Length must be a byte count.');
  const ifGenerationMatch = req.get('x-goog-if-generation-match');
  const id = await sessions.start(name, {
    contentType: req.get('content-type') ?? 'application/octet-stream',
    ...(size !== undefined ? { size: Number(size) } : {}),
    ...(ifGenerationMatch !== undefined ? { ifGenerationMatch } : {}),
  });
  // Absolute, as GCS answers, so a client can PUT to it as it is; on the host the client used to reach us.
  res.status(201).location(new URL(`${SESSION_PATH}${id}`, `${req.protocol}://${req.get('host')}`).href).end();
}

async function putChunk(sessions: ResumableSessions, id: string, req: Request, res: Response): Promise<void> {
  const range = chunkRange(req.get('content-range'));
  if (range.start === undefined) {
    req.resume();
    return answer(res, await sessions.status(id));
  }
  answer(res, await sessions.append(id, { ...range, start: range.start }, req));
}

export function storageRoutes({ store, signer, sessions }: LocalBucket, log: Logger): express.Router {
  const router = express.Router();
  router.use(SIGNED_PATH, async (req, res) => {
    try {
      const { bucket, name } = target(req);
      if (bucket !== store.bucket || !name) throw notFound(`No bucket ${bucket} here.`);
      const query = new URL(req.originalUrl, 'http://local').searchParams;
      const verdict = signer.verify(bucket, name, req.method, query, (h) => req.get(h));
      if (!verdict.ok) {
        const [slug, detail] = FORBIDDEN[verdict.reason];
        throw new Problem(403, slug, 'Forbidden', detail);
      }
      if (req.method === 'GET') return await download(store, name, res);
      if (req.method === 'POST') return await startSession(sessions, name, req, res);
      throw methodNotAllowed(req, ['GET', 'POST']);
    } catch (e) {
      sendError(res, e, log);
    }
  });
  router.use(SESSION_PATH, async (req, res) => {
    try {
      if (req.method !== 'PUT') throw methodNotAllowed(req, ['PUT']);
      await putChunk(sessions, req.path.slice(1), req, res);
    } catch (e) {
      // The client may still be sending the chunk: answer, then drop the connection rather than read the rest.
      if (!req.complete) res.setHeader('Connection', 'close');
      sendError(res, e, log);
    }
  });
  return router;
}
