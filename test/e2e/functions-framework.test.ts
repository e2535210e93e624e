/**
 * The exact entry point Cloud Functions runs (functions/index.ts) under the
 * real functions-framework: its body parser buffers the upload into rawBody
 * and its CloudEvent middleware decodes the Pub/Sub push.
 */
import fs from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notificationMessage } from '../../functions/core/notification.js';
import { expectedRows } from '../support/expected.js';
import { tempDir } from '../support/pipeline.js';

const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');

describe('functions/index.ts under @google-cloud/functions-framework', () => {
  let getTestServer: (name: string) => import('node:http').Server;
  beforeAll(async () => {
    process.env.DATA_DIR = await tempDir();
    process.env.LOG_LEVEL = 'silent';
    await import('../../functions/index.js');
    ({ getTestServer } = await import('@google-cloud/functions-framework/testing'));
  });
  afterAll(() => {
    delete process.env.DATA_DIR;
  });

  it('upload → loadFlights → getdata through the registered functions', async () => {
    const upload = await request(getTestServer('upload')).post('/upload').attach('file', Buffer.from(sample), 'f.csv');
    expect(upload.status).toBe(201);

    // No bus runs here: deliver the notification the bucket would publish, as a Pub/Sub push CloudEvent.
    const info = {
      bucket: 'flights-local', name: upload.body.object, generation: upload.body.generation, metageneration: '1', size: upload.body.bytes,
      contentType: 'text/csv', timeCreated: '', updated: '', metadata: { uploadId: upload.body.uploadId },
    };
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    const event = await request(getTestServer('loadFlights'))
      .post('/')
      .set('ce-specversion', '1.0')
      .set('ce-type', 'google.cloud.pubsub.topic.v1.messagePublished')
      .set('ce-source', '//pubsub.googleapis.com/projects/p/topics/flights-objects')
      .set('ce-id', 'm-1')
      .set('content-type', 'application/json')
      .send({ message: { data: data.toString('base64'), attributes, messageId: 'm-1', publishTime: new Date().toISOString() }, subscription: 's' });
    expect(event.status).toBe(204);

    const status = await request(getTestServer('upload')).get(`/uploads/${upload.body.uploadId}`);
    expect(status.body).toMatchObject({ status: 'loaded', loadedRows: 300 });
    const page = await request(getTestServer('getdata')).get('/getdata').query({ limit: 500 });
    expect(page.body.rows).toEqual(expectedRows(sample));
  });

  it('acknowledges an undecodable message instead of having it retried forever', async () => {
    const res = await request(getTestServer('loadFlights'))
      .post('/')
      .set({ 'ce-specversion': '1.0', 'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished', 'ce-source': 's', 'ce-id': 'm-2' })
      .send({ message: { data: Buffer.from('hello').toString('base64'), attributes: { foo: 'bar' }, messageId: 'm-2', publishTime: '' }, subscription: 's' });
    expect(res.status).toBe(204);
  });
});
