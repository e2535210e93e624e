/**
 * `npm run start:emulators` as a user runs it: the script in a child process,
 * each function in a functions-framework process of its own, on the run's
 * Pub/Sub emulator, each event function triggered by a push subscription.
 * An upload through the gateway must come out of /getdata, a pending file must
 * be loaded by the scheduled flush, a notification the loader keeps failing
 * must end on the dead-letter topic and fail its upload, and a SIGTERM must
 * leave none of the processes behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PubSub, type Message } from '@google-cloud/pubsub';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { loadConfig, type Config } from '../../functions/core/config.js';
import { FUNCTIONS, pushEndpoint, topology } from '../../functions/core/topology.js';
import { PendingFiles } from '../../functions/loader/pending.js';
import { isListening } from '../../tools/ports.js';
import { canonicalOf } from '../support/canonical.js';
import { expectedRows } from '../support/expected.js';
import { eventually, profileEnv, tempDir } from '../support/pipeline.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');
/** The sample's header and its first `rows` rows: a file of its own, not a duplicate of the sample. */
const firstRows = (rows: number) => sample.split('\n').slice(0, rows + 1).join('\n') + '\n';

/** The gateway URL and each function's port, read from the script's banner. */
interface Served {
  gateway: string;
  ports: Record<string, number>;
}

function readBanner(child: ChildProcess, timeoutMs: number): Promise<Served> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no banner within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    child.once('exit', (code) => reject(new Error(`start-emulators exited with ${code}:\n${out}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!out.includes('Ctrl-C stops everything.')) return;
      clearTimeout(timer);
      const gateway = /^ {2}gateway +(http:\/\/\S+)/m.exec(out)![1]!;
      const ports = Object.fromEntries(FUNCTIONS.map((name) => [name, Number(new RegExp(`^ {2}${name} +http://127\\.0\\.0\\.1:(\\d+)`, 'm').exec(out)![1])]));
      resolve({ gateway, ports });
    });
  });
}

describe('npm run start:emulators', () => {
  let script: ChildProcess;
  let served: Served;
  let exited: Promise<number | null>;
  let config: Config;
  let admin: PubSub;

  const rowCount = async (): Promise<number> => (await request(served.gateway).get('/getdata').query({ count: 'exact', limit: 1 })).body.count as number;
  const statusOf = (uploadId: string, status: string) =>
    eventually(async () => {
      const res = await request(served.gateway).get(`/uploads/${uploadId}`);
      return res.body.status === status ? (res.body as Record<string, unknown>) : undefined;
    }, 90_000, `upload ${uploadId} to be ${status}`);

  beforeAll(async () => {
    // Topics and subscriptions of its own on the shared emulator, free ports, a fresh data directory.
    const env = { ...process.env, ...profileEnv('emulator'), DATA_DIR: await tempDir(), PORT: '0', FUNCTIONS_PORT: '0', LOG_LEVEL: 'warn', AUTH: 'off' };
    config = loadConfig(env);
    admin = new PubSub({ projectId: 'demo', apiEndpoint: inject('pubsubEmulatorHost'), emulatorMode: true, universeDomain: 'googleapis.com' });
    script = spawn(process.execPath, ['--import', 'tsx', 'tools/start-emulators.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    exited = new Promise((resolve) => script.once('exit', (code) => resolve(code)));
    served = await readBanner(script, 90_000);
  }, 120_000);

  afterAll(async () => {
    // Only if a test failed before stopping it.
    if (script?.exitCode === null) script.kill('SIGKILL');
    await admin?.close();
  });

  it('loads an upload made through the gateway, its notification pushed to the loader, and serves its rows', async () => {
    const upload = await request(served.gateway).post('/upload').attach('file', Buffer.from(sample), 'flights-sample.csv');
    expect(upload.status).toBe(201);
    expect(await statusOf(upload.body.uploadId, 'loaded')).toMatchObject({ loadedRows: 300 });

    const page = await request(served.gateway).get('/getdata').query({ limit: 500 });
    expect(page.status).toBe(200);
    expect(page.body.rows).toEqual(expectedRows(sample));
  }, 120_000);

  it('loads a pending file nobody notified, through the scheduled flush pushed to flushLoads', async () => {
    // What a loader leaves when its own flush fails: the file and its pending marker, no message left to redeliver.
    const store = new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket, { crossProcess: true });
    const info = await store.write('incoming/2013/06/02/unannounced.csv', Buffer.from(await canonicalOf(firstRows(7))), { contentType: 'text/csv' });
    await new PendingFiles(store).add({ object: info.name, generation: info.generation });
    await eventually(async () => ((await rowCount()) === 307 ? true : undefined), 30_000, 'the scheduled flush to load the file');
  }, 60_000);

  it('dead-letters a notification the loader fails 5 times, and the dead-letter function marks its upload failed', async () => {
    // A disk fault under the loader's pending markers: every delivery of the notification fails.
    const markers = path.join(config.dataDir, 'buckets', config.bucket, 'meta', 'loader', 'pending');
    await fs.promises.rm(markers, { recursive: true, force: true });
    await fs.promises.writeFile(markers, 'not a directory');
    const retained = topology(config).retained[0]!;
    const letters: Message[] = [];
    const deadLetters = admin.subscription(retained.name).on('message', (m: Message) => {
      letters.push(m);
      m.ack();
    });
    try {
      const upload = await request(served.gateway).post('/upload').attach('file', Buffer.from(firstRows(3)), 'three.csv');
      expect(upload.status).toBe(201);
      // The attempt count comes from the dead letter's attributes: a push carries no deliveryAttempt the function could read.
      expect(await statusOf(upload.body.uploadId, 'failed')).toMatchObject({ reason: expect.stringMatching(/^gave up after 5 attempts: /) });
      await eventually(async () => (letters.length ? true : undefined), 10_000, 'the retained dead letter');
      expect(letters[0]!.attributes).toMatchObject({
        objectId: upload.body.object,
        CloudPubSubDeadLetterSourceSubscription: config.loaderSubscription,
        CloudPubSubDeadLetterSourceDeliveryCount: '5',
      });
    } finally {
      await deadLetters.close();
      await fs.promises.rm(markers, { force: true });
    }
  }, 120_000);

  it('creates each event function’s push subscription to its process, on the topic path, with the topology’s filter', async () => {
    for (const spec of topology(config).subscriptions) {
      const [metadata] = await admin.subscription(spec.name).getMetadata();
      expect(metadata.pushConfig?.pushEndpoint).toBe(pushEndpoint(`http://127.0.0.1:${served.ports[spec.target]}`, 'demo', spec.topic));
      expect(metadata.filter).toBe(spec.filter ?? '');
    }
    expect((await admin.subscription(config.loaderSubscription).getMetadata())[0].filter).toBe('hasPrefix(attributes.objectId, "incoming/")');
  });

  it('serves the gateway and every function on loopback only', async () => {
    // All of 127/8 is loopback: a socket bound to every interface would also answer on 127.0.0.2.
    for (const port of [Number(new URL(served.gateway).port), ...Object.values(served.ports)]) {
      expect([await isListening(port, '127.0.0.1'), await isListening(port, '127.0.0.2')]).toEqual([true, false]);
    }
  });

  it('stops every process it started on SIGTERM, and leaves an emulator it did not start running', async () => {
    script.kill('SIGTERM');
    expect(await exited).toBe(0);
    const gatewayPort = Number(new URL(served.gateway).port);
    for (const port of [gatewayPort, ...Object.values(served.ports)]) expect(await isListening(port)).toBe(false);
    expect(await isListening(Number(inject('pubsubEmulatorHost').split(':')[1]))).toBe(true);
  }, 30_000);
});
