/**
 * The validator's CloudEvent function: the bucket's notification for an
 * object finalized under `landing/` (same topic as the loader's; each
 * function has its own subscription and takes only its own prefix). It runs
 * the landed bytes through ingest's own path, storeUpload: the same streaming
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
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { uploadIdOfLanding, type SignedUploadRecord } from '../core/landing.js';
import { fromCloudEvent, parseNotification, UndecodableMessageError, type ObjectNotification } from '../core/notification.js';
import { Problem } from '../core/problem.js';
import { invalidCsv } from '../ingest/handler.js';
import { storeUpload } from '../ingest/store-upload.js';
import { InvalidCsvError } from '../ingest/validator.js';
import { QUARANTINE_PREFIX } from '../loader/flush.js';
import type { Runtime } from '../runtime.js';

/** The client's declared SHA-256 does not match the bytes: a client fault, found only at the end. */
class ChecksumMismatch extends Error {}

/** Fails the stream at its end if the bytes' SHA-256 is not `expected`, so ingest never promotes them. */
function verifySha256(expected: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = hash.digest('hex');
      done(actual === expected ? null : new ChecksumMismatch(`the file's SHA-256 is ${actual}, not the ${expected} declared`));
    },
  });
}

/** A client's fault as the problem it would get inline; undefined for our own failures, which are retried. */
function clientProblem(e: unknown, record: SignedUploadRecord): Problem | undefined {
  if (e instanceof InvalidCsvError) return invalidCsv(e, record.fileName);
  if (e instanceof ChecksumMismatch) return new Problem(422, 'checksum-mismatch', 'Checksum mismatch', `The upload was not stored: ${e.message}.`);
  return undefined;
}

async function quarantine(rt: Runtime, landed: ObjectNotification, uploadId: string, problem: Problem): Promise<void> {
  const target = `${QUARANTINE_PREFIX}${landed.name}`;
  await rt.store.copy(landed.name, target, { ifSourceGenerationMatch: landed.generation });
  const report = { object: landed.name, generation: landed.generation, uploadId, problem: problem.toJSON(), at: new Date().toISOString() };
  await rt.store.write(`${target}.report.json`, Readable.from([JSON.stringify(report, null, 2)]), { contentType: 'application/json' });
}

function landedBytes(rt: Runtime, landed: ObjectNotification, sha256: string | undefined): Readable {
  const source = rt.store.read(landed.name, { generation: landed.generation });
  if (!sha256) return source;
  const checked = verifySha256(sha256);
  source.on('error', (e) => checked.destroy(e));
  return source.pipe(checked);
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

export function landingValidator(rt: Runtime) {
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const landed = landedUpload(event, rt);
    const uploadId = landed?.eventType === 'OBJECT_FINALIZE' ? uploadIdOfLanding(landed.name) : undefined;
    if (!landed || !uploadId) return;
    // Only an upload still awaiting its file is validated; anything else is a redelivery.
    let claimed = false;
    const record = await rt.signedUploads.update(uploadId, (r) => ((claimed = r.status === 'awaiting') ? { status: 'validating' } : {}));
    if (!record) return;
    if (!claimed) {
      // The signed URL used again after its upload was settled: those bytes are neither taken nor kept.
      if (record.status === 'accepted' || record.status === 'failed') await rt.store.delete(landed.name, { ifGenerationMatch: landed.generation }).catch(() => undefined);
      return;
    }
    const log = rt.log.child({ uploadId, object: landed.name, generation: landed.generation });
    try {
      const stored = await storeUpload(rt, landedBytes(rt, landed, record.sha256), { uploadId, contentType: record.contentType, ...(record.fileName ? { fileName: record.fileName } : {}) });
      await rt.signedUploads.update(uploadId, () => ({ status: 'accepted' }));
      log.info({ rows: stored.rows, stored: stored.object }, 'signed upload accepted');
    } catch (e) {
      const problem = clientProblem(e, record);
      if (!problem) {
        // Ours (the bucket or the warehouse unreachable): hand it back for the retry to claim again.
        await rt.signedUploads.update(uploadId, () => ({ status: 'awaiting' }));
        throw e;
      }
      await quarantine(rt, landed, uploadId, problem);
      const { errorCount, errors } = problem.extensions as Pick<SignedUploadRecord, 'errorCount' | 'errors'>;
      await rt.signedUploads.update(uploadId, () => ({ status: 'failed', reason: problem.detail, ...(errors ? { errorCount, errors } : {}) }));
      log.info({ problem: problem.slug, errorCount }, 'signed upload quarantined');
    }
    // The raw bytes are kept only in quarantine: a valid file lives on as its canonical copy in incoming/.
    await rt.store.delete(landed.name, { ifGenerationMatch: landed.generation }).catch(() => undefined);
  };
}
