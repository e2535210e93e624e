/**
 * The message GCS publishes for a bucket notification (payload format
 * JSON_API_V1), and the CloudEvent Cloud Functions gen2 wraps it in for a
 * Pub/Sub trigger. The local store publishes exactly this, so the loader that
 * reads it locally is the loader that runs in the cloud.
 */
import type { BusMessage, ObjectInfo } from './ports.js';

export type ObjectEventType = 'OBJECT_FINALIZE' | 'OBJECT_METADATA_UPDATE' | 'OBJECT_DELETE' | 'OBJECT_ARCHIVE';

export interface ObjectNotification {
  eventType: ObjectEventType;
  bucket: string;
  name: string;
  generation: string;
  eventTime: string;
  /** The object resource as the JSON API describes it. */
  object: Record<string, unknown>;
}

/** The JSON API object resource: numbers that may exceed 2^53 are strings. */
export function objectResource(info: ObjectInfo): Record<string, unknown> {
  return {
    kind: 'storage#object',
    id: `${info.bucket}/${info.name}/${info.generation}`,
    selfLink: `https://www.googleapis.com/storage/v1/b/${info.bucket}/o/${encodeURIComponent(info.name)}`,
    name: info.name,
    bucket: info.bucket,
    generation: info.generation,
    metageneration: info.metageneration,
    contentType: info.contentType,
    timeCreated: info.timeCreated,
    updated: info.updated,
    storageClass: 'STANDARD',
    size: String(info.size),
    ...(info.md5Hash ? { md5Hash: info.md5Hash } : {}),
    ...(info.crc32c ? { crc32c: info.crc32c } : {}),
    metadata: info.metadata,
  };
}

export function notificationMessage(
  eventType: ObjectEventType,
  info: ObjectInfo,
  notificationConfig = `projects/_/buckets/${info.bucket}/notificationConfigs/1`,
): { data: Buffer; attributes: Record<string, string> } {
  return {
    data: Buffer.from(JSON.stringify(objectResource(info))),
    attributes: {
      notificationConfig,
      eventType,
      payloadFormat: 'JSON_API_V1',
      bucketId: info.bucket,
      objectId: info.name,
      objectGeneration: info.generation,
      eventTime: info.updated,
    },
  };
}

/** The subscription filter (SubscriptionSpec.filter) that keeps only notifications of objects whose names start with `prefix`. */
export const objectPrefixFilter = (prefix: string): string => `hasPrefix(attributes.objectId, ${JSON.stringify(prefix)})`;

export class UndecodableMessageError extends Error {
  override readonly name = 'UndecodableMessageError';
}

/** Reads a GCS notification from Pub/Sub attributes and data; throws UndecodableMessageError if it is not one. */
export function parseNotification(attributes: Record<string, string>, data: Buffer): ObjectNotification {
  const { eventType, bucketId, objectId, objectGeneration, payloadFormat, eventTime } = attributes;
  if (!eventType || !bucketId || !objectId || !objectGeneration) {
    throw new UndecodableMessageError('not a Cloud Storage notification: eventType, bucketId, objectId or objectGeneration missing');
  }
  if (!/^\d+$/.test(objectGeneration)) throw new UndecodableMessageError(`objectGeneration is not a number: ${objectGeneration}`);
  let object: Record<string, unknown> = {};
  if (payloadFormat === 'JSON_API_V1') {
    try {
      const parsed: unknown = JSON.parse(data.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
      object = parsed as Record<string, unknown>;
    } catch (e) {
      throw new UndecodableMessageError(`payload is not the JSON object resource: ${(e as Error).message}`);
    }
  }
  return {
    eventType: eventType as ObjectEventType,
    bucket: bucketId,
    name: objectId,
    generation: objectGeneration,
    eventTime: eventTime ?? '',
    object,
  };
}

// ------------------------------------------------------------- CloudEvent

export const PUBSUB_EVENT_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

/** `data` of a `messagePublished` CloudEvent, as Cloud Functions gen2 delivers it. */
export interface MessagePublishedData {
  message: {
    data?: string;
    attributes?: Record<string, string>;
    messageId: string;
    publishTime: string;
  };
  subscription: string;
}

export interface PubSubCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: typeof PUBSUB_EVENT_TYPE;
  time: string;
  datacontenttype: 'application/json';
  data: MessagePublishedData;
}

export function toCloudEvent(message: BusMessage, project: string, topic: string, subscription: string): PubSubCloudEvent {
  return {
    specversion: '1.0',
    id: message.id,
    source: `//pubsub.googleapis.com/projects/${project}/topics/${topic}`,
    type: PUBSUB_EVENT_TYPE,
    time: message.publishTime,
    datacontenttype: 'application/json',
    data: {
      message: {
        data: message.data.toString('base64'),
        attributes: message.attributes,
        messageId: message.id,
        publishTime: message.publishTime,
      },
      subscription: `projects/${project}/subscriptions/${subscription}`,
    },
  };
}

/** The Pub/Sub message inside a `messagePublished` CloudEvent. */
export function fromCloudEvent(data: unknown): { attributes: Record<string, string>; data: Buffer; messageId: string } {
  const message = (data as Partial<MessagePublishedData> | undefined)?.message;
  if (!message || typeof message !== 'object') throw new UndecodableMessageError('CloudEvent data has no Pub/Sub message');
  return {
    attributes: message.attributes ?? {},
    data: Buffer.from(message.data ?? '', 'base64'),
    messageId: message.messageId ?? '',
  };
}
