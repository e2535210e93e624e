/**
 * `npm run start:emulators` as a child process for the reliability harness:
 * the gateway's URL and each function's port from its banner, and the
 * function processes it restarted, from its log (RELIABILITY_ECHO=1 copies
 * the log to stderr).
 */
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FUNCTIONS } from '../../../functions/core/topology.js';
import { isListening } from '../../../tools/ports.js';
import { reconcile, type Acknowledged, type Reconciliation } from './reconciliation.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface EmulatorSet {
  gateway: string;
  /** Each function's URL, as its push subscription reaches it. */
  functionUrl: Record<string, string>;
  /** Functions restarted so far, in order. */
  restarted: string[];
  /** Resolves once every function accepts connections again (after a restart). */
  serving(): Promise<void>;
  /** SIGTERM, the script's orderly stop; resolves with its exit code. */
  stop(): Promise<number | null>;
}

export function startEmulators(env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<EmulatorSet> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/start-emulators.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const restarted: string[] = [];
  let banner = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no banner within ${timeoutMs} ms:\n${banner}`));
    }, timeoutMs);
    void exited.then((code) => reject(new Error(`start-emulators exited with ${code}:\n${banner}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (process.env.RELIABILITY_ECHO) process.stderr.write(`${line}\n`);
      if (line.startsWith('{')) {
        const entry = JSON.parse(line) as { message?: string; function?: string };
        if (entry.message === 'function process exited; restarting it') restarted.push(entry.function!);
        return;
      }
      if (banner.endsWith('Ctrl-C stops everything.\n')) return;
      banner += `${line}\n`;
      if (line !== 'Ctrl-C stops everything.') return;
      clearTimeout(timer);
      const functionUrl = Object.fromEntries(FUNCTIONS.map((name) => [name, new RegExp(`^ {2}${name} +(http://\\S+)`, 'm').exec(banner)![1]!]));
      resolve({
        gateway: /^ {2}gateway +(http:\/\/\S+)/m.exec(banner)![1]!,
        functionUrl,
        restarted,
        serving: async () => {
          for (const url of Object.values(functionUrl)) {
            const { hostname, port } = new URL(url);
            while (!(await isListening(Number(port), hostname))) await new Promise((r) => setTimeout(r, 50));
          }
        },
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}

/**
 * The reconciliation while the set runs: its processes open the warehouse
 * file one operation at a time (adapters/duckdb/shared.ts), so the check waits
 * for a moment none holds it, as they wait for each other.
 */
export async function reconcileRunning(dataDir: string, bucket: string, acknowledged: Acknowledged[], timeoutMs = 30_000): Promise<Reconciliation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await reconcile(dataDir, bucket, acknowledged, []);
    } catch (e) {
      if (!/Could not set lock/.test((e as Error).message) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 50));
    }
  }
}

/**
 * The reconciliation once every row of `acknowledged` is in the warehouse and every upload record
 * is final. A flush commits its rows before it records its uploads `loaded` (loader/flush.ts), so a
 * look between the two finds the rows and records still `loading`: a moment to wait out, not an
 * upload left unsettled. Throws with what the last look found if the deadline passes first.
 */
export async function reconcileSettled(dataDir: string, bucket: string, acknowledged: Acknowledged[], timeoutMs: number): Promise<Reconciliation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await reconcileRunning(dataDir, bucket, acknowledged);
    if (r.lost === 0 && r.unsettled.length === 0) return r;
    if (Date.now() > deadline) throw new Error(`not settled within ${timeoutMs} ms: ${r.lost} rows missing, unsettled ${JSON.stringify(r.unsettled)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}
