/**
 * HTTP entry of the uploads function: `POST /uploads` hands out a signed
 * resumable upload URL for `landing/<id>.csv`, so a file of any size goes
 * straight to the bucket instead of through the 32 MB request cap. The
 * signature binds the method, the exact size and content type, and
 * if-generation-match=0, so the URL starts one upload of that file and
 * nothing else. The validator (uploads/validate.ts) takes it from there.
 */
import type { Request, Response } from 'express';
import { methodNotAllowed, sendError } from '../core/http.js';
import { newUploadId } from '../core/ids.js';
import { landingName, type SignedUploadRecord } from '../core/landing.js';
import { idempotencyIndex, type IdempotencyIndex } from '../core/uploads.js';
import { idempotencyKey, oncePerKey } from '../ingest/idempotency-key.js';
import { uploaderIdentity } from '../ingest/identity.js';
import type { Runtime } from '../runtime.js';
import { parseUploadIntent, type UploadIntent } from './request.js';

/** What an Idempotency-Key replays: the first answer, URL included (it stays valid until it expires). */
type Answer = { uploadId: string; status: 'awaiting'; upload: Awaited<ReturnType<Runtime['store']['signedUrl']>> };

/** Keys share ingest's index; the prefix keeps a key used for POST /upload and for POST /uploads apart. */
const keyId = (key: string): string => `signed-upload:${key}`;

async function issue(rt: Runtime, intent: UploadIntent, uploader: string | undefined): Promise<Answer> {
  const { urlTtlSeconds } = rt.config.signedUploads;
  const uploadId = newUploadId();
  const object = landingName(uploadId);
  const expiresAt = new Date(Date.now() + urlTtlSeconds * 1000);
  const upload = await rt.store.signedUrl(object, { action: 'resumable', expiresAt, contentType: intent.contentType, contentLength: intent.size, ifGenerationMatch: '0' });
  const now = new Date().toISOString();
  const record: SignedUploadRecord = {
    uploadId,
    status: 'awaiting',
    object,
    bytes: intent.size,
    contentType: intent.contentType,
    uploadUrlExpiresAt: upload.expiresAt,
    createdAt: now,
    updatedAt: now,
    ...(intent.fileName ? { fileName: intent.fileName } : {}),
    ...(intent.sha256 ? { sha256: intent.sha256 } : {}),
    ...(uploader ? { uploader } : {}),
  };
  await rt.signedUploads.create(uploadId, record);
  rt.log.info({ uploadId, bytes: intent.size }, 'signed upload issued');
  return { uploadId, status: 'awaiting', upload };
}

/** A repeated request with the same Idempotency-Key gets the first answer (200, Idempotent-Replayed), not a second upload. */
async function create(rt: Runtime, keys: IdempotencyIndex<Answer>, req: Request, res: Response): Promise<void> {
  const key = idempotencyKey(req);
  const intent = await parseUploadIntent(req, rt.config.signedUploads.maxBytes);
  const { result, replayed } = await oncePerKey(keys, key === undefined ? undefined : keyId(key), 'uploads', () => issue(rt, intent, uploaderIdentity(req.headers)));
  if (replayed) res.status(200).setHeader('Idempotent-Replayed', 'true');
  else res.status(201);
  res.location(`/uploads/${result.uploadId}`).json(result);
}

export function uploadsHandler(rt: Runtime) {
  const keys = idempotencyIndex<Answer>(rt.store, rt.config.ingest);
  return async (req: Request, res: Response): Promise<void> => {
    try {
      if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
      await create(rt, keys, req, res);
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
