/**
 * Runs one function of functions/index.ts under the real functions-framework
 * CLI, in a process of its own, as a Cloud Functions instance would run it.
 *
 * `node --import tsx` lets the framework's loader import the TypeScript entry
 * point directly: it resolves `--source` to a path, sees `"type": "module"`
 * in package.json and loads it with import(), which tsx compiles on the fly
 * (and maps the `.js` import specifiers to the `.ts` files). That is one node
 * process per function, so a signal reaches the framework itself. It binds
 * `host` (loopback unless told otherwise) through tools/listen-on-host.ts, as
 * the CLI itself would listen on every interface.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { killOnExit } from './kill-on-exit.js';
import { isListening } from './ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The CLI's entry; the package exports only its API, so it is found beside that. */
const FRAMEWORK_MAIN = path.join(path.dirname(createRequire(import.meta.url).resolve('@google-cloud/functions-framework')), 'main.js');
const LISTEN_ON_HOST = fileURLToPath(new URL('./listen-on-host.ts', import.meta.url));

/** An address a client can connect to: a wildcard bind is reached on loopback. */
const reachable = (host: string): string => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
const inUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host);

export interface FunctionProcess {
  target: string;
  port: number;
  url: string;
  /** Resolves with the exit code when the process ends, for whatever reason. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Copies a child's output line by line, each line tagged with the function's name. */
function tagLines(input: NodeJS.ReadableStream, tag: string, output: NodeJS.WritableStream): void {
  readline.createInterface({ input }).on('line', (line) => output.write(`${tag} ${line}\n`));
}

export interface StartOptions {
  /** The address to bind; 127.0.0.1 unless told. */
  host?: string;
  startTimeoutMs?: number;
}

export async function startFunction(target: string, port: number, env: NodeJS.ProcessEnv, { host = '127.0.0.1', startTimeoutMs = 60_000 }: StartOptions = {}): Promise<FunctionProcess> {
  // Otherwise the readiness poll below would take whatever holds the port for the function.
  if (await isListening(port, reachable(host))) throw new Error(`port ${port} for ${target} is already in use`);
  const args = ['--import', 'tsx', '--import', LISTEN_ON_HOST, FRAMEWORK_MAIN, `--target=${target}`, `--port=${port}`, '--source=functions/index.ts'];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, FUNCTION_HOST: host },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tagLines(child.stdout, `[${target}]`, process.stdout);
  tagLines(child.stderr, `[${target}]`, process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // If this process dies without stopping it, the function goes too.
  const forget = killOnExit(child.pid);
  let running = true;
  void exited.then(() => {
    running = false;
    forget();
  });

  const stop = async (): Promise<void> => {
    if (!running) return;
    // The framework answers SIGTERM by exiting at once, as Cloud Run expects of an instance.
    child.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) return;
    child.kill('SIGKILL');
    await exited;
  };

  // The framework prints nothing when NODE_ENV=production, so readiness is the port accepting connections.
  const deadline = Date.now() + startTimeoutMs;
  while (!(await isListening(port, reachable(host)))) {
    if (!running) throw new Error(`functions-framework --target=${target} exited before serving on port ${port}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`functions-framework --target=${target} did not listen on port ${port} within ${startTimeoutMs} ms`);
    }
    await sleep(100);
  }
  return { target, port, url: `http://${inUrl(reachable(host))}:${port}`, exited, stop };
}
