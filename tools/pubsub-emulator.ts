/**
 * Starts the real Pub/Sub emulator (`gcloud beta emulators pubsub start`) on a
 * loopback port (a free one unless told) and stops it again. gcloud is a
 * Python wrapper that starts a Java server, so the emulator runs in a process
 * group of its own and stopping it signals the whole group; killing only
 * gcloud would leave the Java child holding the port.
 *
 * From a test file:
 *   let emulator: PubSubEmulator;
 *   beforeAll(async () => { emulator = await startPubSubEmulator(); }, 60_000);
 *   afterAll(() => emulator?.stop());
 *   new PubSub({ projectId: emulator.projectId, apiEndpoint: emulator.host });
 *
 * From a vitest globalSetup, return `emulator.stop` as the teardown and hand
 * `emulator.host` to the tests with `provide('PUBSUB_EMULATOR_HOST', ...)`.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { killOnExit } from './kill-on-exit.js';
import { freePort } from './ports.js';

export interface PubSubEmulator {
  /** `127.0.0.1:<port>`: the value for `PUBSUB_EMULATOR_HOST` or the client's `apiEndpoint`. */
  host: string;
  projectId: string;
  stop(): Promise<void>;
}

/** The emulator answers `GET /` with `Ok` once it accepts requests. */
async function isReady(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function startPubSubEmulator({ projectId = 'demo', port = 0, startTimeoutMs = 60_000 } = {}): Promise<PubSubEmulator> {
  port ||= await freePort();
  const host = `127.0.0.1:${port}`;
  // Otherwise the readiness poll below would take someone else's emulator for ours, and stop() would not stop it.
  if (await isReady(host)) throw new Error(`${host} is already serving (another emulator?); set PUBSUB_EMULATOR_HOST to use it`);
  const child = spawn('gcloud', ['beta', 'emulators', 'pubsub', 'start', `--host-port=${host}`, `--project=${projectId}`, '--quiet'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  let log = '';
  child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A detached group outlives this process; if the test run dies before stop(), take the emulator with it.
  const forget = killOnExit(child.pid === undefined ? undefined : -child.pid);
  let running = true;
  void exited.then(() => (running = false));

  const stop = async (): Promise<void> => {
    forget();
    signalGroup('SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    // gcloud may exit before its Java child has; make sure nothing in the group survives.
    signalGroup('SIGKILL');
    if (!done) await exited;
  };

  const deadline = Date.now() + startTimeoutMs;
  while (!(await isReady(host))) {
    if (!running || Date.now() > deadline) {
      await stop();
      throw new Error(`Pub/Sub emulator did not start on ${host}:\n${log}`);
    }
    await sleep(250);
  }
  return { host, projectId, stop };
}
