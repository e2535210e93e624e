/**
 * `npm run start:emulators` as a user runs it: the script in a child process,
 * each function in a functions-framework process of its own, on the run's
 * Pub/Sub emulator. An upload through the gateway must come out of /getdata,
 * and a SIGTERM must leave none of the processes behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PubSub } from '@google-cloud/pubsub';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../functions/core/config.js';
import { isListening } from '../../tools/ports.js';
import { expectedRows } from '../support/expected.js';
import { eventually, profileEnv, tempDir } from '../support/pipeline.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');
const FUNCTIONS = ['upload', 'loadFlights', 'flushLoads', 'deadLetter', 'getdata'];

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
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // Topics of its own on the shared emulator, free ports, a fresh data directory.
    env = { ...process.env, ...profileEnv('emulator'), DATA_DIR: await tempDir(), PORT: '0', FUNCTIONS_PORT: '0', FLUSH_TICK_MS: '200', LOG_LEVEL: 'warn', AUTH: 'off' };
    script = spawn(process.execPath, ['--import', 'tsx', 'tools/start-emulators.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    exited = new Promise((resolve) => script.once('exit', (code) => resolve(code)));
    served = await readBanner(script, 90_000);
  }, 120_000);

  afterAll(() => {
    // Only if a test failed before stopping it.
    if (script.exitCode === null) script.kill('SIGKILL');
  });

  it('loads an upload made through the gateway and serves its rows', async () => {
    const upload = await request(served.gateway).post('/upload').attach('file', Buffer.from(sample), 'flights-sample.csv');
    expect(upload.status).toBe(201);

    const status = await eventually(async () => {
      const res = await request(served.gateway).get(`/uploads/${upload.body.uploadId}`);
      return res.body.status === 'loaded' ? res.body : undefined;
    }, 60_000, 'the upload to be loaded');
    expect(status).toMatchObject({ status: 'loaded', loadedRows: 300 });

    const page = await request(served.gateway).get('/getdata').query({ limit: 500 });
    expect(page.status).toBe(200);
    expect(page.body.rows).toEqual(expectedRows(sample));
  }, 90_000);

  it('creates the loader and validator subscriptions with their filters', async () => {
    const config = loadConfig(env);
    const admin = new PubSub({ projectId: 'demo', apiEndpoint: inject('pubsubEmulatorHost'), emulatorMode: true, universeDomain: 'googleapis.com' });
    try {
      const filterOf = async (name: string) => (await admin.subscription(name).getMetadata())[0].filter;
      expect(await filterOf(config.loaderSubscription)).toBe('hasPrefix(attributes.objectId, "incoming/")');
      expect(await filterOf(config.signedUploads.validatorSubscription)).toBe('hasPrefix(attributes.objectId, "landing/")');
      expect(await filterOf(`${config.deadLetterTopic}-recorder`)).toBe('');
    } finally {
      await admin.close();
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
