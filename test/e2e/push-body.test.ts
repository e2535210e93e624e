/**
 * The direct Pub/Sub trigger in the cloud: Pub/Sub POSTs its own push body
 * (not a CloudEvent) to the function's URL at /projects/P/topics/T, with
 * `deliveryAttempt` at the top of it when the subscription dead-letters. The
 * real functions-framework must turn it into the event the loader handles,
 * and nothing may depend on the attempt count it drops.
 */
import fs from 'node:fs';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/core/config.js';
import { notificationMessage } from '../../functions/core/notification.js';
import { pushPath, subscriptionFor } from '../../functions/core/topology.js';
import { tempDir } from '../support/pipeline.js';

const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');
const PROJECT = 'flights-prod';

describe('a Pub/Sub push request to a function under the functions-framework', () => {
  let getTestServer: (name: string) => import('node:http').Server;
  beforeAll(async () => {
    process.env.DATA_DIR = await tempDir();
    process.env.LOG_LEVEL = 'silent';
    await import('../../functions/index.js');
    ({ getTestServer } = await import('@google-cloud/functions-framework/testing'));
  });

  it('reaches the loader as its messagePublished event, whatever deliveryAttempt says, and the file loads', async () => {
    const upload = await request(getTestServer('upload')).post('/upload').attach('file', Buffer.from(sample), 'f.csv');
    expect(upload.status).toBe(201);
    const info = {
      bucket: 'flights-local', name: upload.body.object, generation: upload.body.generation, metageneration: '1', size: upload.body.bytes,
      contentType: 'text/csv', timeCreated: '', updated: '', metadata: { uploadId: upload.body.uploadId },
    };
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    const loader = subscriptionFor(loadConfig({}), 'loadFlights');
    const publishTime = new Date().toISOString();
    // The body as Pub/Sub documents it for push, on a subscription with a dead-letter policy: a redelivery.
    const push = await request(getTestServer('loadFlights'))
      .post(pushPath(PROJECT, loader.topic))
      .set('content-type', 'application/json')
      .send({
        message: { attributes, data: data.toString('base64'), messageId: '17', message_id: '17', publishTime, publish_time: publishTime },
        subscription: `projects/${PROJECT}/subscriptions/${loader.name}`,
        deliveryAttempt: 3,
      });
    expect(push.status).toBe(204);

    const status = await request(getTestServer('upload')).get(`/uploads/${upload.body.uploadId}`);
    expect(status.body).toMatchObject({ status: 'loaded', loadedRows: 300 });
  });
});
