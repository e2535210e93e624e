/**
 * Runs one function of functions/index.ts under the real functions-framework
 * CLI, in a process of its own, as a Cloud Functions instance would run it.
 *
 * `node --import tsx` lets the framework's loader import the TypeScript entry
 * point directly: it resolves `--source` to a path, sees `"type": "module"`
 * in package.json and loads it with import(), which tsx compiles on the fly
 * (and maps the `.js` import specifiers to the `.ts` files). That is one node
 * process per function, so a signal reaches the framework itself.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isListening } from './ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The CLI's entry; the package exports only its API, so it is found beside that. */
const FRAMEWORK_MAIN = path.join(path.dirname(createRequire(import.meta.url).resolve('@google-cloud/functions-framework')), 'main.js');

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

export async function startFunction(target: string, port: number, env: NodeJS.ProcessEnv, startTimeoutMs = 60_000): Promise<FunctionProcess> {
  // Otherwise the readiness poll below would take whatever holds the port for the function.
  if (await isListening(port)) throw new Error(`port ${port} for ${target} is already in use`);
  const child = spawn(process.execPath, ['--import', 'tsx', FRAMEWORK_MAIN, `--target=${target}`, `--port=${port}`, '--source=functions/index.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tagLines(child.stdout, `[${target}]`, process.stdout);
  tagLines(child.stderr, `[${target}]`, process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // If this process dies without stopping it, the function goes too.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let running = true;
  void exited.then(() => {
    running = false;
    process.off('exit', killOnExit);
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
  while (!(await isListening(port))) {
    if (!running) throw new Error(`functions-framework --target=${target} exited before serving on port ${port}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`functions-framework --target=${target} did not listen on port ${port} within ${startTimeoutMs} ms`);
    }
    await sleep(100);
  }
  return { target, port, url: `http://127.0.0.1:${port}`, exited, stop };
}
