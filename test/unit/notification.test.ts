import { describe, expect, it } from 'vitest';
import {
  fromCloudEvent, notificationMessage, parseNotification, PUBSUB_EVENT_TYPE, toCloudEvent, UndecodableMessageError,
} from '../../functions/core/notification.js';
import type { ObjectInfo } from '../../functions/core/ports.js';

const info: ObjectInfo = {
  bucket: 'b', name: 'incoming/2013/01/01/u.csv', generation: '1795390741259000123', metageneration: '1', size: 1234,
  contentType: 'text/csv', md5Hash: 'abc==', timeCreated: '2026-01-01T00:00:00.000Z', updated: '2026-01-01T00:00:00.000Z', metadata: { uploadId: 'u' },
};

describe('GCS notifications (JSON_API_V1)', () => {
  it('carries the attributes GCS sets, with the generation as an exact string', () => {
    const { attributes } = notificationMessage('OBJECT_FINALIZE', info);
    expect(attributes).toEqual({
      notificationConfig: 'projects/_/buckets/b/notificationConfigs/1',
      eventType: 'OBJECT_FINALIZE',
      payloadFormat: 'JSON_API_V1',
      bucketId: 'b',
      objectId: 'incoming/2013/01/01/u.csv',
      objectGeneration: '1795390741259000123',
      eventTime: '2026-01-01T00:00:00.000Z',
    });
  });

  it('carries the object resource as the JSON API writes it (size as a string, custom metadata)', () => {
    const body = JSON.parse(notificationMessage('OBJECT_FINALIZE', info).data.toString());
    expect(body).toMatchObject({ kind: 'storage#object', name: info.name, bucket: 'b', generation: info.generation, size: '1234', md5Hash: 'abc==', metadata: { uploadId: 'u' } });
    expect(body.id).toBe(`b/${info.name}/${info.generation}`);
  });

  it('survives the trip through a Pub/Sub CloudEvent and back', () => {
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    const event = toCloudEvent({ id: '9', data, attributes, publishTime: 't', deliveryAttempt: 1 }, 'p', 'topic', 'sub');
    expect(event.type).toBe(PUBSUB_EVENT_TYPE);
    expect(event.source).toBe('//pubsub.googleapis.com/projects/p/topics/topic');
    const message = fromCloudEvent(event.data);
    expect(parseNotification(message.attributes, message.data)).toMatchObject({ eventType: 'OBJECT_FINALIZE', name: info.name, generation: info.generation });
  });

  it('refuses messages that are not notifications', () => {
    expect(() => parseNotification({}, Buffer.from('{}'))).toThrow(UndecodableMessageError);
    const { attributes } = notificationMessage('OBJECT_FINALIZE', info);
    expect(() => parseNotification(attributes, Buffer.from('not json'))).toThrow(UndecodableMessageError);
    expect(() => parseNotification({ ...attributes, objectGeneration: 'x' }, Buffer.from('{}'))).toThrow(UndecodableMessageError);
    expect(() => fromCloudEvent({})).toThrow(UndecodableMessageError);
  });
});
