/**
 * The exact entry point Cloud Functions runs (functions/index.ts) under the
 * real functions-framework: its body parser buffers the upload into rawBody
 * and its CloudEvent middleware decodes the Pub/Sub push, as a CloudEvent or
 * as Pub/Sub's own push body (the direct trigger, at /projects/P/topics/T,
 * with a `deliveryAttempt` that the framework drops and nothing may need).
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/core/config.js';
import { notificationMessage } from '../../functions/core/notification.js';
import { pushPath, subscriptionFor } from '../../functions/core/topology.js';
import { expectedRows } from '../support/expected.js';
import { flightsCsv } from '../support/generate-flights.js';
import { quietLogger, tempDir } from '../support/pipeline.js';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { exportLedger, type ExportRecord } from '../../functions/core/exports.js';
import { newUploadId } from '../../functions/core/ids.js';
import { parseExportRequest } from '../../functions/exports/request.js';
import { RECONCILE_TASK } from '../../functions/loader/reconcile.js';

const APP_ORIGIN = 'https://app.example';
const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');

describe('functions/index.ts under @google-cloud/functions-framework', () => {
  let getTestServer: (name: string) => import('node:http').Server;

  /** Uploads `csv` through the upload function; the notification the bucket would publish for it. */
  async function uploadWithNotification(csv: string) {
    const upload = await request(getTestServer('upload')).post('/upload').attach('file', Buffer.from(csv), 'f.csv');
    expect(upload.status).toBe(201);
    const info = {
      bucket: 'flights-local', name: upload.body.object, generation: upload.body.generation, metageneration: '1', size: upload.body.bytes,
      contentType: 'text/csv', timeCreated: '', updated: '', metadata: { uploadId: upload.body.uploadId },
    };
    return { uploadId: upload.body.uploadId as string, ...notificationMessage('OBJECT_FINALIZE', info) };
  }

  beforeAll(async () => {
    process.env.DATA_DIR = await tempDir();
    process.env.LOG_LEVEL = 'silent';
    process.env.CORS_ORIGINS = `${APP_ORIGIN}, https://other.example`;
    await import('../../functions/index.js');
    ({ getTestServer } = await import('@google-cloud/functions-framework/testing'));
  });
  afterAll(() => {
    delete process.env.DATA_DIR;
    delete process.env.CORS_ORIGINS;
  });

  it('upload → loadFlights → getdata through the registered functions', async () => {
    // No bus runs here: deliver the notification the bucket would publish, as a Pub/Sub push CloudEvent.
    const { uploadId, data, attributes } = await uploadWithNotification(sample);
    const event = await request(getTestServer('loadFlights'))
      .post('/')
      .set('ce-specversion', '1.0')
      .set('ce-type', 'google.cloud.pubsub.topic.v1.messagePublished')
      .set('ce-source', '//pubsub.googleapis.com/projects/p/topics/flights-objects')
      .set('ce-id', 'm-1')
      .set('content-type', 'application/json')
      .send({ message: { data: data.toString('base64'), attributes, messageId: 'm-1', publishTime: new Date().toISOString() }, subscription: 's' });
    expect(event.status).toBe(204);

    const status = await request(getTestServer('upload')).get(`/uploads/${uploadId}`);
    expect(status.body).toMatchObject({ status: 'loaded', loadedRows: 300 });
    const page = await request(getTestServer('getdata')).get('/getdata').query({ limit: 500 });
    expect(page.body.rows).toEqual(expectedRows(sample));
  });

  it('answers a browser preflight from a listed origin on every HTTP function, and only from those (CORS_ORIGINS)', async () => {
    for (const [fn, path, method] of [['getdata', '/getdata', 'GET'], ['exports', '/exports', 'POST'], ['upload', '/upload', 'POST'], ['uploads', '/uploads', 'POST']] as const) {
      const preflight = await request(getTestServer(fn))
        .options(path)
        .set({ origin: APP_ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': 'x-api-key, content-type' });
      expect(preflight.status, fn).toBe(204);
      expect(preflight.headers['access-control-allow-origin'], fn).toBe(APP_ORIGIN);
      expect(preflight.headers['access-control-allow-methods'], fn).toContain(method);
      expect(preflight.headers['access-control-allow-headers'], fn).toBe('x-api-key, content-type');
      expect(preflight.headers['access-control-max-age'], fn).toBe('600');
    }
    const stranger = await request(getTestServer('getdata')).options('/getdata').set({ origin: 'https://evil.example', 'access-control-request-method': 'GET' });
    // Without Access-Control-Allow-Origin the browser refuses to send the request.
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets a listed origin read the answer and its paging headers; other origins get no CORS headers', async () => {
    const page = await request(getTestServer('getdata')).get('/getdata?limit=1').set('origin', APP_ORIGIN);
    expect(page.status).toBe(200);
    expect(page.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(page.headers['access-control-expose-headers']).toContain('Link');
    const other = await request(getTestServer('getdata')).get('/getdata?limit=1').set('origin', 'https://evil.example');
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('acknowledges an undecodable message instead of having it retried forever', async () => {
    const res = await request(getTestServer('loadFlights'))
      .post('/')
      .set({ 'ce-specversion': '1.0', 'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished', 'ce-source': 's', 'ce-id': 'm-2' })
      .send({ message: { data: Buffer.from('hello').toString('base64'), attributes: { foo: 'bar' }, messageId: 'm-2', publishTime: '' }, subscription: 's' });
    expect(res.status).toBe(204);
  });

  it("takes Pub/Sub's own push body at /projects/P/topics/T as the loader's event, whatever deliveryAttempt says, and the file loads", async () => {
    const { uploadId, data, attributes } = await uploadWithNotification(flightsCsv(20, 41));
    const project = 'flights-prod';
    const loader = subscriptionFor(loadConfig({}), 'loadFlights');
    const publishTime = new Date().toISOString();
    // The body as Pub/Sub documents it for push, on a subscription with a dead-letter policy: a redelivery.
    const push = await request(getTestServer('loadFlights'))
      .post(pushPath(project, loader.topic))
      .set('content-type', 'application/json')
      .send({
        message: { attributes, data: data.toString('base64'), messageId: '17', message_id: '17', publishTime, publish_time: publishTime },
        subscription: `projects/${project}/subscriptions/${loader.name}`,
        deliveryAttempt: 3,
      });
    expect(push.status).toBe(204);
    const status = await request(getTestServer('upload')).get(`/uploads/${uploadId}`);
    expect(status.body).toMatchObject({ status: 'loaded', loadedRows: 20 });
  });

  it('reconciles on the reconcile schedule’s push to flushLoads: an export stranded for longer than the upload timeout is queued again, a recent one is not', async () => {
    const config = loadConfig();
    const store = new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket);
    const bus = new DurableLocalBus(path.join(config.dataDir, 'bus'), quietLogger());
    const exporter = subscriptionFor(config, 'runExport').name;
    const { spec, columns } = parseExportRequest(new URLSearchParams('select=carrier'), '');
    const record = (exportId: string, ageMs: number): ExportRecord => {
      const at = new Date(Date.now() - ageMs).toISOString();
      return { exportId, status: 'running', query: spec, columns, createdAt: at, updatedAt: at };
    };
    // Recorded by POST /exports, never queued: the instance stopped between the two.
    const [stranded, recent] = [newUploadId(), newUploadId()];
    await exportLedger(store).create(stranded, record(stranded, config.ingest.requestTimeoutMs + 60_000));
    await exportLedger(store).create(recent, record(recent, 0));
    const queued = (await bus.backlog(exporter)).messages;

    const flush = subscriptionFor(config, 'flushLoads');
    const publishTime = new Date().toISOString();
    // What Cloud Scheduler's reconcile job publishes, as Pub/Sub pushes it (core/topology.ts).
    const tick = await request(getTestServer('flushLoads'))
      .post(pushPath('flights-prod', flush.topic))
      .set('content-type', 'application/json')
      .send({ message: { attributes: { task: RECONCILE_TASK }, data: Buffer.from('{"tick":true}').toString('base64'), messageId: '21', publishTime }, subscription: `projects/flights-prod/subscriptions/${flush.name}` });
    expect(tick.status).toBe(204);

    expect((await bus.backlog(exporter)).messages).toBe(queued + 1);
    const status = async (exportId: string) => (await request(getTestServer('exports')).get(`/exports/${exportId}`)).body as { status: string };
    expect(await status(recent)).toMatchObject({ status: 'running' });
    await bus.close();
  });
});

