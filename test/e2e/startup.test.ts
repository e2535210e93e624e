/**
 * `npm start` as a user runs it (the entry point in a child process): it says
 * why it cannot start, in a sentence, with exit code 1, rather than a stack trace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_LOCK } from '../../functions/local/startup.js';
import { tempDir } from '../support/temp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function runningAt(instance: ReturnType<typeof start>): Promise<URL> {
  for (;;) {
    const match = /running at (http:\/\/\S+)/.exec(instance.output());
    if (match) return new URL(match[1]!);
    if (instance.child.exitCode !== null) throw new Error(`npm start exited with ${instance.child.exitCode}:\n${instance.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('npm start', () => {
  let first: ReturnType<typeof start>;
  let url: URL;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await tempDir();
    first = start({ DATA_DIR: dataDir, PORT: '0' });
    url = await runningAt(first);
  }, 60_000);

  afterAll(() => {
    // Only if a test failed before stopping it.
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  });

  it('refuses a second instance on the same data directory, naming the first one', async () => {
    const second = start({ DATA_DIR: dataDir, PORT: '0' });
    expect(await second.exited).toBe(1);
    expect(second.output().trim()).toBe(
      `another instance (PID ${first.child.pid}) holds the data directory ${dataDir}; stop it, or set DATA_DIR to another directory`,
    );
  }, 60_000);

  it('says the port is in use when it is', async () => {
    const other = start({ DATA_DIR: await tempDir(), PORT: url.port });
    expect(await other.exited).toBe(1);
    expect(other.output().trim()).toBe(`port ${url.port} is in use; set PORT to another port (PORT=0 picks a free one)`);
    expect(fs.existsSync(path.join(dataDir, INSTANCE_LOCK))).toBe(true);
  }, 60_000);

  it('gives the data directory back when stopped', async () => {
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(fs.existsSync(path.join(dataDir, INSTANCE_LOCK))).toBe(false);
  }, 60_000);

  it('takes over a data directory whose instance died without stopping', async () => {
    const dir = await tempDir();
    const crashed = start({ DATA_DIR: dir, PORT: '0' });
    await runningAt(crashed);
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    expect(fs.existsSync(path.join(dir, INSTANCE_LOCK))).toBe(true);
    const next = start({ DATA_DIR: dir, PORT: '0' });
    await runningAt(next);
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  }, 60_000);
});
