/**
 * HTTP entry of the exports function: `POST /exports` records the export and
 * queues it (the exporter, exports/runner.ts, runs it off the request path, so
 * a long warehouse job never meets the HTTP deadline); `GET /exports/{id}`
 * reports it, with freshly signed download URLs once it is done.
 */
import type { Request, Response } from 'express';
import { exportFilesPrefix, type ExportRecord } from '../core/exports.js';
import { isRead, methodNotAllowed, notFound, queryParams, READ_METHODS, sendError } from '../core/http.js';
import { newUploadId, UPLOAD_ID } from '../core/ids.js';
import type { Runtime } from '../runtime.js';
import { parseExportRequest } from './request.js';

async function create(rt: Runtime, req: Request, res: Response): Promise<void> {
  const { spec, columns } = parseExportRequest(queryParams(req), rt.cursorSecret);
  // Export ids share the upload ids' format: time-ordered and unguessable.
  const exportId = newUploadId();
  const now = new Date().toISOString();
  await rt.exports.create(exportId, { exportId, status: 'running', query: spec, columns, createdAt: now, updatedAt: now });
  await rt.bus.publish(rt.config.exports.topic, Buffer.from(JSON.stringify({ exportId })), { exportId });
  rt.log.info({ exportId }, 'export queued');
  res.status(202).location(`/exports/${exportId}`).json({ exportId, status: 'running', columns, createdAt: now });
}

/** The public view: the files as signed URLs, valid from now for the configured time. */
async function view(rt: Runtime, record: ExportRecord): Promise<Record<string, unknown>> {
  const { query: _internal, files, ...rest } = record;
  if (!files) return rest;
  const expiresAt = new Date(Date.now() + rt.config.exports.urlTtlSeconds * 1000);
  const signed = await Promise.all(
    files.map(async (f) => {
      const { url, expiresAt: until } = await rt.store.signedUrl(f.name, { action: 'read', expiresAt });
      return { name: f.name.slice(exportFilesPrefix(record.exportId).length), bytes: f.bytes, url, expiresAt: until };
    }),
  );
  return { ...rest, files: signed };
}

async function status(rt: Runtime, exportId: string, res: Response): Promise<void> {
  const record = UPLOAD_ID.test(exportId) ? await rt.exports.get(exportId) : undefined;
  if (!record) throw notFound(`No export ${exportId} (exports expire with their files).`);
  res.set('cache-control', 'no-store').json(await view(rt, record));
}

export function exportsHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      const one = /^\/exports\/([^/]+)$/.exec(req.path);
      if (one) {
        if (!isRead(req)) throw methodNotAllowed(req, READ_METHODS);
        return await status(rt, one[1]!, res);
      }
      if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
      await create(rt, req, res);
    } catch (e) {
      sendError(res, e, rt.log);
    }
  };
}
