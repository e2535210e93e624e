/**
 * The validator's CloudEvent function: the bucket's notification for an
 * object finalized under `landing/` (same topic as the loader's; each
 * function has its own subscription and takes only its own prefix). It runs
 * the landed bytes through ingest's own path (stageUpload, commitUpload): the same streaming
 * validator, canonical CSV in `staging/`, promotion to `incoming/` with
 * if-generation-match=0, after which the loader takes over as for an inline
 * upload. An invalid file goes to `quarantine/` beside a report holding the
 * problem a 422 from POST /upload would have carried, and GET /uploads/{id}
 * shows the same line/column errors.
 *
 * A separate function rather than a branch of the loader: validating a large
 * file takes minutes of CPU, where the loader is a quick mark-and-flush, so it
 * gets its own memory, timeout and retries.
 */
import { createGunzip } from 'node:zlib';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { uploadIdOfLanding, type SignedUploadRecord } from '../core/landing.js';
import { fromCloudEvent, parseNotification, UndecodableMessageError, type ObjectNotification } from '../core/notification.js';
import { Problem } from '../core/problem.js';
import { idempotencyIndex, type IdempotencyIndex } from '../core/uploads.js';
import { commitUpload } from '../ingest/commit.js';
import { isGzipType } from '../ingest/decode.js';
import { clientOutcome } from '../ingest/errors.js';
import { MAX_FAULTS } from '../ingest/handler.js';
import { discardStaged, stageUpload, type StagedUpload, type StoredUpload } from '../ingest/store-upload.js';
import { QUARANTINE_PREFIX } from '../loader/flush.js';
import type { Runtime } from '../runtime.js';
import { ValidationLease } from './claim.js';

/** A client's fault as the problem it would get inline (a 4xx); undefined for our own failures, which are retried. */
function clientProblem(e: unknown): Problem | undefined {
  const outcome = clientOutcome(e);
  return outcome instanceof Problem ? outcome : undefined;
}

/**
 * The landed object must have the size the URL was issued for: GCS enforces
 * `X-Upload-Content-Length` on JSON API sessions only, and nothing says it does
 * on an XML API session, so it is checked here, before a byte is read.
 */
function sizeProblem(record: SignedUploadRecord, landed: ObjectNotification): Problem | undefined {
  const size = Number(landed.object.size);
  if (size === record.bytes) return undefined;
  return new Problem(422, 'size-mismatch', 'Size mismatch', `The upload was not stored: ${size} bytes arrived, not the ${record.bytes} declared.`);
}

/** The declared SHA-256 is checked on the staged file's digest, before anything is promoted. */
function checksumProblem(record: SignedUploadRecord, staged: StagedUpload): Problem | undefined {
  if (!record.sha256 || record.sha256 === staged.sha256) return undefined;
  return new Problem(422, 'checksum-mismatch', 'Checksum mismatch', `The upload was not stored: the file's SHA-256 is ${staged.sha256}, not the ${record.sha256} declared.`);
}

async function quarantine(rt: Runtime, landed: ObjectNotification, uploadId: string, problem: Problem): Promise<void> {
  const target = `${QUARANTINE_PREFIX}${landed.name}`;
  await rt.store.copy(landed.name, target, { ifSourceGenerationMatch: landed.generation });
  const report = { object: landed.name, generation: landed.generation, uploadId, problem: problem.toJSON(), at: new Date().toISOString() };
  await rt.store.write(`${target}.report.json`, Buffer.from(JSON.stringify(report, null, 2)), { contentType: 'application/json' });
}

function landedUpload(event: CloudEvent<unknown>, rt: Runtime): ObjectNotification | undefined {
  try {
    const message = fromCloudEvent(event.data);
    return parseNotification(message.attributes, message.data);
  } catch (e) {
    if (!(e instanceof UndecodableMessageError)) throw e;
    rt.log.error({ eventId: event.id, err: e }, 'undecodable notification; ignored by the validator');
    return undefined;
  }
}

/** Stages, checks and commits the landed file as ingest does an inline one; throws what ingest would. */
async function accept(rt: Runtime, contents: IdempotencyIndex<StoredUpload>, landed: ObjectNotification, record: SignedUploadRecord): Promise<Partial<SignedUploadRecord>> {
  const wrongSize = sizeProblem(record, landed);
  if (wrongSize) throw wrongSize;
  const source = rt.store.read(landed.name, { generation: landed.generation });
  const decoders = isGzipType(record.contentType) ? [createGunzip()] : [];
  const signed = { createdAt: record.createdAt, uploadUrlExpiresAt: record.uploadUrlExpiresAt };
  const meta = {
    uploadId: record.uploadId,
    contentType: record.contentType,
    signed,
    ...(record.fileName ? { fileName: record.fileName } : {}),
    ...(record.uploader ? { uploader: record.uploader } : {}),
    declaredBytes: record.bytes,
  };
  const staged = await stageUpload({ store: rt.store, limits: { ...rt.config.ingest, maxFaults: MAX_FAULTS } }, { stream: source, decoders }, meta);
  const mismatch = checksumProblem(record, staged);
  if (mismatch) {
    await discardStaged(rt.store, staged);
    throw mismatch;
  }
  const { upload, duplicate } = await commitUpload({ store: rt.store, ledger: rt.ledger, contents }, staged);
  return duplicate ? { status: 'duplicate', duplicateOf: upload.uploadId } : { status: 'accepted' };
}

export function landingValidator(rt: Runtime) {
  const contents = idempotencyIndex<StoredUpload>(rt.store, rt.config.ingest);
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const landed = landedUpload(event, rt);
    const uploadId = landed?.eventType === 'OBJECT_FINALIZE' ? uploadIdOfLanding(landed.name) : undefined;
    if (!landed || !uploadId) return;
    // Only an upload awaiting its file, or one whose validating run lapsed, is validated; anything else is a redelivery.
    const { record, lease } = await ValidationLease.claim(rt.signedUploads, uploadId, rt.config.signedUploads.validationLeaseMs);
    if (!record) return;
    if (!lease) {
      // Another run still holds it after a whole lease: fail, so Pub/Sub brings this back to take over if that run dies.
      if (record.status === 'validating') throw new Error(`upload ${uploadId} is being validated by another run`);
      // The signed URL used again after its upload was settled: those bytes are neither taken nor kept.
      await rt.store.delete(landed.name, { ifGenerationMatch: landed.generation }).catch(() => undefined);
      return;
    }
    const log = rt.log.child({ uploadId, object: landed.name, generation: landed.generation });
    try {
      const outcome = await accept(rt, contents, landed, record);
      await lease.settle(outcome);
      log.info(outcome, 'signed upload validated');
    } catch (e) {
      const problem = clientProblem(e);
      if (!problem) {
        // Ours (the bucket or the warehouse unreachable): hand it back for the retry to claim again.
        await lease.settle({ status: 'awaiting' });
        throw e;
      }
      await quarantine(rt, landed, uploadId, problem);
      const { errorCount, errors } = problem.extensions as Pick<SignedUploadRecord, 'errorCount' | 'errors'>;
      await lease.settle({ status: 'failed', reason: problem.detail, ...(errors ? { errorCount, errors } : {}) });
      log.info({ problem: problem.slug, errorCount }, 'signed upload quarantined');
    }
    // The raw bytes are kept only in quarantine: a valid file lives on as its canonical copy in incoming/.
    await rt.store.delete(landed.name, { ifGenerationMatch: landed.generation }).catch(() => undefined);
  };
}
