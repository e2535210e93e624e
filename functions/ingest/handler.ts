/** HTTP entry of the ingest function: `POST /upload` and `GET /uploads/{uploadId}`. */
import type { Request, Response } from 'express';
import type { IngestLimits } from '../core/config.js';
import { guardRequest } from '../core/crash-guard.js';
import { newUploadId, UPLOAD_ID } from '../core/ids.js';
import { bodySource, discardUnreadBody, isRead, methodNotAllowed, notFound, READ_METHODS, sendError, sendJson, sendProblem, UNAVAILABLE_RETRY_SECONDS } from '../core/http.js';
import { httpRequestLog, traceFields, type Logger } from '../core/logger.js';
import { Problem } from '../core/problem.js';
import { idempotencyIndex, uploadView, type IdempotencyIndex } from '../core/uploads.js';
import type { Runtime } from '../runtime.js';
import { commitUpload, type Committed } from './commit.js';
import { idempotencyKey, oncePerKey } from './idempotency-key.js';
import { fileDigests, sameFiles } from './payload-digest.js';
import { clientOutcome, STORAGE_FULL_RETRY_SECONDS, storageFullProblem, storeUnavailableProblem } from './errors.js';
import { ConcurrencyGate } from './gate.js';
import { uploaderIdentity } from './identity.js';
import { ByteBudget, declaredLength, declaredLengthProblem, decompressedBudget, tooLarge, watchUploadRate, type BodyState } from './limits.js';
import { forEachFile } from './request-files.js';
import { InvalidCsvError } from './validator.js';
import { uploadRejected, uploadStored } from '../ops/events.js';
import { discardStaged, stageUpload, type StagedUpload, type StoredUpload } from './store-upload.js';

/** Faults reported per file; the count goes on. Signed uploads (uploads/validate.ts) report as many. */
export const MAX_FAULTS = 100;

/** What an Idempotency-Key replays: the first response, and the digests of the files it was for. */
interface Replay {
  status: number;
  location: string;
  body: unknown;
  files: string[];
}

interface Ingest {
  rt: Runtime;
  limits: IngestLimits;
  gate: ConcurrencyGate;
  keys: IdempotencyIndex<Replay>;
  contents: IdempotencyIndex<StoredUpload>;
}

const responseBody = (committed: Committed[]): unknown =>
  committed.length === 1 ? committed[0]!.upload : { uploads: committed.map((c) => c.upload) };

type Budgets = Parameters<typeof forEachFile>[3];

function requestBudgets(limits: IngestLimits, profile: Runtime['config']['profile']): Budgets {
  const wire = new ByteBudget(() => limits.maxUploadBytes, () => tooLarge('request body', limits.maxUploadBytes, profile));
  return { wire, decompressed: decompressedBudget(wire, limits, profile) };
}

/**
 * Streams every file of the request into staging/, then commits them: all or
 * nothing. The first failure anywhere (a limit, the timeout, a bad file, the
 * client leaving) aborts the request and is what the client is told.
 */
async function receive(ing: Ingest, req: Request, uploadId: string, abort: AbortController, budgets: Budgets): Promise<{ committed: Committed[]; files: string[] }> {
  const { rt, limits } = ing;
  const body = bodySource(req);
  const fail = (e: Error): void => abort.abort(e);
  abort.signal.addEventListener('abort', () => body.destroy(abort.signal.reason as Error), { once: true });
  const uploader = uploaderIdentity(req.headers);
  // Each file's size as far as the request says: its Content-Length, which bounds every file of a multipart body.
  const declared = declaredLength(req.headers);
  const stages: Promise<StagedUpload>[] = [];
  let staged: StagedUpload[];
  try {
    staged = await forEachFile(req.headers, body, limits, budgets, fail, (file) => {
      // The request's id names its first file, so a single-file upload's logs and status share one id.
      const id = stages.length === 0 ? uploadId : newUploadId();
      const meta = {
        uploadId: id,
        contentType: file.contentType,
        ...(file.fileName ? { fileName: file.fileName } : {}),
        ...(uploader ? { uploader } : {}),
        ...(declared !== undefined ? { declaredBytes: declared } : {}),
      };
      const stage = stageUpload({ store: rt.store, limits: { ...limits, maxFaults: MAX_FAULTS } }, file.body, meta, abort.signal);
      stage.catch(fail);
      stages.push(stage);
      return stage;
    });
  } catch (e) {
    // Other files may still be finishing their staging: wait for them, then drop what they staged.
    const settled = await Promise.allSettled(stages);
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? discardStaged(rt.store, s.value) : undefined)));
    throw abort.signal.aborted ? abort.signal.reason : e;
  }
  const committed: Committed[] = [];
  for (const [i, s] of staged.entries()) {
    try {
      committed.push(await commitUpload({ store: rt.store, ledger: rt.ledger, contents: ing.contents }, s));
    } catch (e) {
      await Promise.all(staged.slice(i + 1).map((rest) => discardStaged(rt.store, rest)));
      throw e;
    }
  }
  return { committed, files: staged.map((s) => s.sha256) };
}

/** Answers the upload and resolves with the status sent; a failure is thrown for `reject`. */
async function upload(ing: Ingest, req: Request, res: Response, log: Logger, uploadId: string, budgets: Budgets, abort: AbortController): Promise<number> {
  const { rt, limits } = ing;
  const tooBig = declaredLengthProblem(req.headers, limits.maxUploadBytes, rt.config.profile);
  if (tooBig) throw tooBig;
  const samePayload = async (first: Replay): Promise<boolean> => sameFiles(await fileDigests(req, limits, budgets), first.files);
  const { result: reply, replayed } = await oncePerKey(ing.keys, idempotencyKey(req), uploadId, async () => {
    const timer = setTimeout(
      () => abort.abort(new Problem(408, 'timeout', 'Request Timeout', `The upload did not complete within ${limits.requestTimeoutMs / 1000} s.`)),
      limits.requestTimeoutMs,
    );
    const body = (): BodyState => (req.complete ? 'complete' : req.readableLength > 0 ? 'ours' : 'client');
    const unwatch = watchUploadRate(budgets.wire, limits, body, (tooSlow) => abort.abort(tooSlow));
    try {
      const { committed, files } = await receive(ing, req, uploadId, abort, budgets);
      for (const c of committed) uploadStored(log, c.upload, c.duplicate);
      const status = committed.some((c) => !c.duplicate) ? 201 : 200;
      return { status, location: `/uploads/${committed[0]!.upload.uploadId}`, body: responseBody(committed), files };
    } finally {
      clearTimeout(timer);
      unwatch();
    }
  }, samePayload);
  if (replayed) {
    // The first request's answer; this one's body was read only to check it is the same payload.
    sendJson(res, 200, reply.body, { Location: reply.location, 'Idempotent-Replayed': 'true' });
    return 200;
  }
  sendJson(res, reply.status, reply.body, { Location: reply.location });
  return reply.status;
}

function reject(req: Request, res: Response, log: Logger, e: unknown, httpRequest: (status: number) => object): void {
  const outcome = clientOutcome(e) ?? storageFullProblem(e) ?? storeUnavailableProblem(e);
  if (outcome === 'closed') {
    // 499, as proxies log it: the client closed the connection; there is nobody to answer.
    log.info({ httpRequest: httpRequest(499), reason: (e as Error).message }, 'upload rejected: client went away');
    return;
  }
  if (!outcome) {
    sendError(res, e, log.child({ httpRequest: httpRequest(500) }));
    discardUnreadBody(req);
    return;
  }
  const { errorCount } = outcome.extensions as { errorCount?: number };
  const rows = e instanceof InvalidCsvError ? e.rows : 0;
  uploadRejected(log, outcome.slug, rows, { httpRequest: httpRequest(outcome.status), problem: outcome.slug, detail: outcome.detail, errorCount });
  if (outcome.status === 429 || outcome.status === 409) res.setHeader('Retry-After', '1');
  if (outcome.status === 507) res.setHeader('Retry-After', String(STORAGE_FULL_RETRY_SECONDS));
  if (outcome.status === 503) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_SECONDS));
  sendProblem(res, outcome);
  discardUnreadBody(req);
}

export function ingestHandler(rt: Runtime) {
  const limits = rt.config.ingest;
  const ing: Ingest = {
    rt,
    limits,
    gate: new ConcurrencyGate(limits.maxConcurrentUploads),
    keys: idempotencyIndex(rt.store, limits),
    contents: idempotencyIndex(rt.store, limits),
  };
  return async (req: Request, res: Response): Promise<void> => {
    const statusPath = /^\/uploads\/([^/]+)$/.exec(req.path);
    if (statusPath || req.method !== 'POST') {
      try {
        if (!statusPath) throw methodNotAllowed(req, ['POST']);
        if (!isRead(req)) throw methodNotAllowed(req, READ_METHODS);
        const uploadId = statusPath[1]!;
        // A signed upload has only its landing record until its file is validated and stored.
        const stored = UPLOAD_ID.test(uploadId) ? await rt.ledger.get(uploadId) : undefined;
        const record = stored ? await uploadView(rt.ledger, stored) : UPLOAD_ID.test(uploadId) ? await rt.signedUploads.get(uploadId) : undefined;
        if (!record) throw notFound(`No upload ${uploadId}.`);
        res.json(record);
      } catch (e) {
        sendError(res, e, rt.log);
      }
      return;
    }
    const startedAt = performance.now();
    const uploadId = newUploadId();
    const log = rt.log.child({ uploadId, ...traceFields(req.headers, rt.config.projectId) });
    const budgets = requestBudgets(limits, rt.config.profile);
    const httpRequest = (status: number) => httpRequestLog(req, { status, startedAt, bytesRead: budgets.wire.used });
    log.info({ httpRequest: httpRequestLog(req), contentType: req.headers['content-type'], contentLength: req.headers['content-length'] }, 'upload started');
    // Whatever ends this upload early: a limit, the timeout, or an exception nobody caught in its streams.
    const abort = new AbortController();
    const unguard = guardRequest((e) => abort.abort(e));
    const release = ing.gate.tryEnter();
    try {
      if (!release) throw new Problem(429, 'overloaded', 'Too Many Requests', `${limits.maxConcurrentUploads} uploads are already in progress here; retry shortly.`);
      const status = await upload(ing, req, res, log, uploadId, budgets, abort);
      log.info({ httpRequest: httpRequest(status) }, 'upload completed');
    } catch (e) {
      reject(req, res, log, e, httpRequest);
    } finally {
      unguard();
      release?.();
    }
  };
}
