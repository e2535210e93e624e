/**
 * The process-level safety net, in a real process as `npm start` installs it:
 * a bug that throws out of an upload's callbacks fails that upload with a 500
 * and the server keeps serving; one outside any request still ends the process,
 * and so does one in the loader's work for a message the upload published.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import { flightsCsv } from '../support/generate-flights.js';
import { tempDir } from '../support/pipeline.js';
import { multipart, send } from './http.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A server whose store has a bug: staging a file named bug.csv emits an 'error' event nobody listens to. */
const SERVER = `
import { EventEmitter } from 'node:events';
import { loadConfig } from './functions/core/config.js';
import { installCrashGuard } from './functions/core/crash-guard.js';
import { startLocalPipeline } from './functions/local/pipeline.js';
import { createRuntime } from './functions/runtime.js';
const rt = await createRuntime(loadConfig({ DATA_DIR: process.env.DATA_DIR, LOG_LEVEL: 'silent', AUTH: 'off' }));
installCrashGuard(rt.log);
const write = rt.store.write.bind(rt.store);
rt.store.write = (name, body, options) => {
  if (options?.metadata?.originalName === 'bug.csv') setImmediate(() => new EventEmitter().emit('error', new Error('injected bug')));
  return write(name, body, options);
};
const pipeline = await startLocalPipeline(rt, 0, '127.0.0.1');
process.on('SIGUSR2', () => setImmediate(() => { throw new Error('outside any request'); }));
console.log(pipeline.url);
`;

/**
 * An upload that publishes a file's notification and is still open (a later file of its body still
 * streaming) when the loader, delivered that notification, hits a bug in a callback.
 */
const PUBLISHER = `
import { AsyncResource } from 'node:async_hooks';
import { pino } from 'pino';
import { DurableLocalBus } from './functions/adapters/local/durable-bus.js';
import { guardRequest, installCrashGuard } from './functions/core/crash-guard.js';
installCrashGuard(pino({ level: 'silent' }));
const bus = new DurableLocalBus(process.env.DATA_DIR);
await bus.subscribe(JSON.parse(process.env.SPEC), () => new Promise(() => setImmediate(() => { throw new Error('loader bug'); })));
new AsyncResource('upload').runInAsyncScope(() => {
  guardRequest((e) => console.log('upload failed: ' + e.message));
  void bus.publish('objects', Buffer.from('incoming/a.csv'));
});
`;

let child: ChildProcess | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  child = dataDir = undefined;
});

it('fails only the request a stray error event belongs to, keeps serving, and still exits on one outside any request', async () => {
  dataDir = await tempDir();
  const server = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SERVER], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child = server;
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = /^(http:\/\/\S+)$/m.exec(out);
      if (line) resolve(line[1]!);
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });

  // Large enough to be staged through the store, where the bug is.
  const { body, contentType } = multipart([{ fileName: 'bug.csv', data: flightsCsv(5_000, 1) }]);
  const buggy = await send(url, body, { 'content-type': contentType });
  expect(buggy.status).toBe(500);
  expect(buggy.headers['content-type']).toMatch(/^application\/problem\+json/);

  const fine = await send(url, flightsCsv(50, 2));
  expect(fine.status).toBe(201);
  expect(server.exitCode).toBeNull();

  server.kill('SIGUSR2');
  expect(await exited).toBe(1);
});

it("leaves a loader bug during a delivery to the loader's own crash handling, not to the upload that published the message", async () => {
  dataDir = await tempDir();
  const spec = { name: 'load', topic: 'objects', maxDeliveryAttempts: 5, deadLetterTopic: 'dead', minBackoffMs: 10, maxBackoffMs: 100 };
  const publisher = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PUBLISHER], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir, SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child = publisher;
  let out = '';
  publisher.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => publisher.once('exit', (c) => r(c)));

  // The upload, still open, is not failed for it; the process ends as for any bug outside a request...
  expect(out).toBe('');
  expect(code).toBe(1);
  // ...and the message, never acknowledged, waits on disk for the loader's next start.
  expect(await new DurableLocalBus(dataDir).pending('load')).toBe(1);
});
