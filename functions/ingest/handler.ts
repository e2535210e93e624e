/** HTTP entry of the ingest function: `POST /upload` and `GET /uploads/{uploadId}`. */
import busboy from 'busboy';
import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { UPLOAD_ID } from '../core/ids.js';
import { bodySource, methodNotAllowed, notFound, sendError, sendProblem } from '../core/http.js';
import { Problem } from '../core/problem.js';
import type { Runtime } from '../runtime.js';
import { storeUpload, type StoredUpload, type UploadMeta } from './store-upload.js';
import { InvalidCsvError } from './validator.js';

const CSV_TYPES = new Set(['text/csv', 'application/csv', 'text/plain', 'application/octet-stream']);

/** Also the problem recorded for an invalid signed upload (uploads/validate.ts). */
export function invalidCsv(e: InvalidCsvError, fileName?: string): Problem {
  const where = e.faults[0] ? ` First at line ${e.faults[0].line}${e.faults[0].column ? `, column ${e.faults[0].column}` : ''}: ${e.faults[0].reason}.` : '';
  return new Problem(422, 'invalid-csv', 'Invalid CSV', `The file has ${e.faultCount} fault(s) and was not stored.${where}`, {
    ...(fileName ? { file: fileName } : {}),
    errorCount: e.faultCount,
    errors: e.faults,
  });
}

/** Reads each file part of a multipart body in turn and stores it. */
function multipartUploads(rt: Runtime, req: Request, source: Readable): Promise<StoredUpload[]> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers });
    } catch (e) {
      return reject(new Problem(400, 'malformed-multipart', 'Malformed multipart body', (e as Error).message));
    }
    const uploads: Promise<StoredUpload>[] = [];
    parser.on('file', (field, stream, info) => {
      if (field !== 'file') {
        stream.resume();
        return;
      }
      const meta: UploadMeta = { fileName: info.filename, contentType: info.mimeType };
      const upload = storeUpload(rt, stream, meta).catch((e: unknown) => {
        stream.resume();
        throw e instanceof InvalidCsvError ? invalidCsv(e, info.filename) : e;
      });
      uploads.push(upload);
    });
    parser.on('error', (e: Error) => reject(new Problem(400, 'malformed-multipart', 'Malformed multipart body', e.message)));
    parser.on('close', () => {
      if (uploads.length === 0) return reject(new Problem(400, 'no-file', 'No file', 'Send the CSV as a multipart form field named "file", or as a text/csv body.'));
      Promise.all(uploads).then(resolve, reject);
    });
    source.pipe(parser);
  });
}

async function upload(rt: Runtime, req: Request, res: Response): Promise<void> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const source = bodySource(req);
  let stored: StoredUpload[];
  if (contentType === 'multipart/form-data') {
    stored = await multipartUploads(rt, req, source);
  } else if (CSV_TYPES.has(contentType)) {
    stored = [
      await storeUpload(rt, source, { contentType }).catch((e: unknown) => {
        throw e instanceof InvalidCsvError ? invalidCsv(e) : e;
      }),
    ];
  } else {
    throw new Problem(415, 'unsupported-media-type', 'Unsupported Media Type', `Send multipart/form-data with a "file" field, or a text/csv body; got ${contentType || 'no Content-Type'}.`);
  }
  for (const s of stored) rt.log.info({ uploadId: s.uploadId, object: s.object, rows: s.rows, bytes: s.bytes }, 'upload stored');
  const first = stored[0]!;
  res.status(201).location(`/uploads/${first.uploadId}`).json(stored.length === 1 ? first : { uploads: stored });
}

async function status(rt: Runtime, uploadId: string, res: Response): Promise<void> {
  // A signed upload has only its landing record until its file is validated and stored.
  const record = UPLOAD_ID.test(uploadId) ? ((await rt.ledger.get(uploadId)) ?? (await rt.signedUploads.get(uploadId))) : undefined;
  if (!record) throw notFound(`No upload ${uploadId}.`);
  res.json(record);
}

export function ingestHandler(rt: Runtime) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      const statusPath = /^\/uploads\/([^/]+)$/.exec(req.path);
      if (statusPath) {
        if (req.method !== 'GET') throw methodNotAllowed(req, ['GET']);
        return await status(rt, statusPath[1]!, res);
      }
      if (req.method !== 'POST') throw methodNotAllowed(req, ['POST']);
      await upload(rt, req, res);
    } catch (e) {
      if (e instanceof Problem && e.status < 500) {
        rt.log.info({ status: e.status, problem: e.slug, detail: e.detail }, 'upload rejected');
        // The client may still be sending: answer now, then drop the rest of its body.
        res.setHeader('Connection', 'close');
        return sendProblem(res, e);
      }
      sendError(res, e, rt.log);
    }
  };
}
