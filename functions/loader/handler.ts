/**
 * The loader: a CloudEvent handler for the bucket's Pub/Sub notifications,
 * the same code under Cloud Functions gen2 and on the local bus. Throwing
 * asks for redelivery; after the subscription's maximum attempts the message
 * goes to the dead-letter topic, where `deadLetterHandler` records why.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { fromCloudEvent, parseNotification, UndecodableMessageError } from '../core/notification.js';
import type { Runtime } from '../runtime.js';
import { INCOMING_PREFIX } from '../ingest/store-upload.js';

export function loaderHandler(rt: Runtime) {
  return async (event: CloudEvent<unknown>): Promise<void> => {
    let notification;
    try {
      const message = fromCloudEvent(event.data);
      notification = parseNotification(message.attributes, message.data);
    } catch (e) {
      if (!(e instanceof UndecodableMessageError)) throw e;
      // Retrying cannot make it decodable: acknowledge it and keep a copy where people look.
      rt.log.error({ eventId: event.id, err: e }, 'undecodable notification; sent to the dead-letter topic');
      await rt.bus.publish(rt.config.deadLetterTopic, Buffer.from(JSON.stringify(event.data ?? null)), { reason: e.message, eventId: event.id });
      return;
    }
    const { eventType, name, generation } = notification;
    if (eventType !== 'OBJECT_FINALIZE' || !name.startsWith(INCOMING_PREFIX)) return;
    const uploadId = (notification.object.metadata as Record<string, string> | undefined)?.uploadId;
    if (uploadId) await rt.ledger.update(uploadId, () => ({ status: 'loading', generation }));
    try {
      const [outcome] = await rt.warehouse.load([{ object: name, generation, uri: rt.store.uri(name, generation) }]);
      rt.log.info({ uploadId, object: name, generation, ...outcome }, outcome?.status === 'duplicate' ? 'already loaded' : 'loaded');
      if (uploadId) await rt.ledger.update(uploadId, () => ({ status: 'loaded', loadedRows: outcome?.rows, reason: undefined }));
    } catch (e) {
      const reason = (e as Error).message;
      rt.log.warn({ uploadId, object: name, generation, err: e }, 'load failed; will be retried');
      if (uploadId) await rt.ledger.update(uploadId, () => ({ reason }));
      throw e;
    }
  };
}

/** Marks the upload behind a dead-lettered notification as failed, with the last reason the loader recorded. */
export function deadLetterHandler(rt: Runtime) {
  return async (event: CloudEvent<unknown>): Promise<void> => {
    const message = fromCloudEvent(event.data);
    const attempts = message.attributes.CloudPubSubDeadLetterSourceDeliveryCount;
    let uploadId: string | undefined;
    try {
      const notification = parseNotification(message.attributes, message.data);
      uploadId = (notification.object.metadata as Record<string, string> | undefined)?.uploadId;
    } catch {
      // Not a notification (an undecodable message the loader parked here): logging it is all there is to do.
    }
    rt.log.error({ uploadId, attributes: message.attributes }, 'notification dead-lettered');
    if (!uploadId) return;
    await rt.ledger.update(uploadId, (current) => ({
      status: 'failed',
      reason: `gave up after ${attempts ?? 'several'} attempts: ${current.reason ?? message.attributes.CloudPubSubDeadLetterSourceLastError ?? 'unknown error'}`,
    }));
  };
}
