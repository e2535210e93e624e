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
import type { Runtime } from '../runtime.js';
import { parseUploadIntent } from './request.js';

async function create(rt: Runtime, req: Request, res: Response): Promise<void> {
  const { urlTtlSeconds, maxBytes } = rt.config.signedUploads;
  const intent = await parseUploadIntent(req, maxBytes);
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
  };
  await rt.signedUploads.create(uploadId, record);
  rt.log.info({ uploadId, bytes: intent.size }, 'signed upload issued');
  res.status(201).location(`/uploads/${uploadId}`).json({ uploadId, status: 'awaiting', upload });
}

export function uploadsHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
      await create(rt, req, res);
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
