/**
 * The loader's CloudEvent functions, the same code under Cloud Functions gen2
 * and on the local bus:
 * - `loadFlights` takes the bucket's Pub/Sub notification, marks the file
 *   pending and triggers a flush (which loads now, or at the next flush if one
 *   ran too recently);
 * - `flushLoads` is the scheduled flush (Cloud Scheduler → Pub/Sub);
 * - `deadLetter` records notifications Pub/Sub gave up on.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { crashPointAfterReply } from '../core/crash-point.js';
import { fromCloudEvent, parseNotification, UndecodableMessageError } from '../core/notification.js';
import type { Runtime } from '../runtime.js';
import { INCOMING_PREFIX } from '../ingest/store-upload.js';
import { PendingFiles, type PendingFile } from './pending.js';
import { markLoading } from './upload-status.js';
import { RECONCILE_TASK, reconcileOnSchedule } from './reconcile.js';
import { deadLetter } from '../ops/events.js';

const uploadIdOf = (object: Record<string, unknown>): string | undefined => (object.metadata as Record<string, string> | undefined)?.uploadId;

/** The file a notification announces, if the loader takes it; undefined for another event or prefix. */
function announcedFile(data: unknown): Omit<PendingFile, 'failures'> | undefined {
  const message = fromCloudEvent(data);
  const { eventType, name, generation, object } = parseNotification(message.attributes, message.data);
  if (eventType !== 'OBJECT_FINALIZE' || !name.startsWith(INCOMING_PREFIX)) return undefined;
  const uploadId = uploadIdOf(object);
  const bytes = Number(object.size);
  return { object: name, generation, ...(uploadId ? { uploadId } : {}), ...(Number.isSafeInteger(bytes) ? { bytes } : {}) };
}

export function loaderHandler(rt: Runtime) {
  const pending = new PendingFiles(rt.store);
  const record = async (file: Omit<PendingFile, 'failures'>): Promise<void> => {
    const { object: name, generation, uploadId } = file;
    try {
      if (await pending.add(file)) {
        rt.log.info({ uploadId, object: name, generation }, 'file pending load');
        // A late copy of a loaded file's notification adds a marker the flush settles as a duplicate; the upload stays loaded.
        if (uploadId) await markLoading(rt.ledger, uploadId, generation);
      }
    } catch (e) {
      // Thrown on: Pub/Sub redelivers, then dead-letters after its max delivery attempts. One line per delivery, naming the file.
      rt.log.warn({ uploadId, object: name, generation, err: e }, 'notification not recorded; it will be redelivered');
      throw e;
    }
    await rt.flush();
    crashPointAfterReply('after-ack');
  };
  const undecodable = async (event: CloudEvent<unknown>, e: UndecodableMessageError): Promise<void> => {
    // Retrying cannot make it decodable: acknowledge it and keep a copy where people look.
    rt.log.error({ eventId: event.id, err: e }, 'undecodable notification; sent to the dead-letter topic');
    await rt.bus.publish(rt.config.deadLetterTopic, Buffer.from(JSON.stringify(event.data ?? null)), { source: 'loader', reason: e.message, eventId: event.id });
  };
  // Not async itself: once the file is known, the event and its parse are no one's, so a delivery
  // waiting on its flush (for as long as a flush lasts) holds the few fields of its file, not the notification.
  return (event: CloudEvent<unknown>): Promise<void> => {
    let file;
    try {
      file = announcedFile(event.data);
    } catch (e) {
      return e instanceof UndecodableMessageError ? undecodable(event, e) : Promise.reject(e as Error);
    }
    return file ? record(file) : Promise.resolve();
  };
}

function taskOf(event: CloudEvent<unknown>): string | undefined {
  try {
    return fromCloudEvent(event.data).attributes.task;
  } catch {
    return undefined; // a tick without a Pub/Sub message is a plain flush tick
  }
}

/** A tick of the flush schedule, or of the reconcile schedule (reconcile first, then flush what it found). */
export function flushHandler(rt: Runtime) {
  return async (event?: CloudEvent<unknown>): Promise<void> => {
    if (event && taskOf(event) === RECONCILE_TASK) {
      rt.log.info(await reconcileOnSchedule(rt), 'scheduled reconcile done');
    }
    await rt.flush();
  };
}

/** Marks the upload behind a dead-lettered notification as failed. */
export function deadLetterHandler(rt: Runtime) {
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const message = fromCloudEvent(event.data);
    const { attributes } = message;
    deadLetter(rt.log, { attributes });
    if (attributes.source === 'loader') return; // the loader's own report: it already recorded the failure
    let uploadId: string | undefined;
    try {
      uploadId = uploadIdOf(parseNotification(attributes, message.data).object);
    } catch {
      // Not a notification: logging it is all there is to do.
    }
    rt.log.error({ uploadId, attributes }, 'notification dead-lettered');
    if (!uploadId) return;
    const attempts = attributes.CloudPubSubDeadLetterSourceDeliveryCount ?? 'several';
    const lastError = attributes.CloudPubSubDeadLetterSourceLastError ?? 'the notification could not be processed';
    await rt.ledger.update(uploadId, () => ({ status: 'failed', reason: `gave up after ${attempts} attempts: ${lastError}` }));
  };
}
