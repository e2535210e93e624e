/**
 * The local bucket's side door: what storage.googleapis.com does for a signed
 * URL, served by the local gateway next to the API. A request is verified
 * against its signature (method, object, expiry and signed headers) before
 * anything else; a tampered or expired URL is answered 403 problem+json.
 */
import express, { type Request, type Response } from 'express';
import { SIGNED_PATH, type LocalUrlSigner } from '../adapters/local/url-signer.js';
import { methodNotAllowed, notFound, sendError } from '../core/http.js';
import type { Logger } from '../core/logger.js';
import type { ObjectStore } from '../core/ports.js';
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

export function storageRoutes(store: ObjectStore, signer: LocalUrlSigner, log: Logger): express.Router {
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
      if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
      await download(store, name, res);
    } catch (e) {
      sendError(res, e, log);
    }
  });
  return router;
}
