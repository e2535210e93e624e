/** `npm start` as a child process on a free loopback port, to be killed with SIGKILL at any point. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../../..');

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  kill(): Promise<void>;
  /** SIGTERM: the server's own orderly stop. */
  stop(): Promise<void>;
}

/** `onOutput` sees everything the server writes to stdout (its JSON log lines), from its first line on. */
export function startServer(dataDir: string, env: Record<string, string> = {}, onOutput?: (text: string) => void): Promise<ServerProcess> {
  // Crashes, not access, are tested here (test/ops has the keys): AUTH=off, as the in-process test pipeline runs.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'functions/local/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', AUTH: 'off', MIN_BACKOFF_MS: '50', MAX_BACKOFF_MS: '500', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    if (onOutput) child.stdout!.on('data', (c: Buffer) => onOutput(c.toString()));
    const readBanner = (c: Buffer): void => {
      out += c.toString();
      const url = /running at (http:\/\/[\d.]+:\d+)/.exec(out)?.[1];
      if (url) {
        out = '';
        child.stdout!.off('data', readBanner);
        child.stdout!.resume();
        resolve({ url, child, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') });
      }
    };
    child.stdout!.on('data', readBanner);
    void exited.then(() => reject(new Error(`the server exited before it was ready (${child.exitCode ?? child.signalCode}): ${err}`)));
  });
}
