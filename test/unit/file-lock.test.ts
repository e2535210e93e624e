/**
 * The cross-process mutex of the filesystem bucket: at most one holder at a
 * time, also when the lock was left behind by a process that died holding it
 * and many waiters race to break it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { withFileLock } from '../../functions/adapters/local/file-lock.js';
import { tempDir } from '../support/pipeline.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Each filesystem call of the lock waits a random 0-2 ms first, as on a loaded machine, so the
// waiters' reads, renames and links interleave in many orders; seeded, so a failure repeats.
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = (await importOriginal<{ default: Record<string, unknown> }>()).default;
  let seed = 16;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const jittered = Object.fromEntries(
    Object.entries(real).map(([name, value]) => [
      name,
      typeof value === 'function' ? async (...args: unknown[]) => (await sleep(Math.floor(random() * 3)), value(...args)) : value,
    ]),
  );
  return { ...jittered, default: jittered };
});

/** The pid of a process that has exited (and been reaped), as a holder killed while holding would leave. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;

describe('withFileLock', () => {
  it('lets one waiter at a time in when many race to break a lock its dead holder left', async () => {
    const lock = path.join(await tempDir(), 'locks', 'x.lock');
    await fs.mkdir(path.dirname(lock), { recursive: true });
    let holders = 0;
    let mostAtOnce = 0;
    let entered = 0;
    const hold = async (): Promise<void> => {
      mostAtOnce = Math.max(mostAtOnce, ++holders);
      entered++;
      for (let i = 0; i < 5; i++) await yieldToLoop();
      holders--;
    };
    const dead = deadPid();
    for (let round = 0; round < 30; round++) {
      await fs.writeFile(lock, String(dead));
      await Promise.all(Array.from({ length: 8 }, () => withFileLock(lock, hold)));
    }
    expect(entered).toBe(30 * 8);
    expect(mostAtOnce).toBe(1);
    await expect(fs.stat(lock)).rejects.toThrow();
  });

  it('lets one waiter at a time in when the holder was killed and so was the waiter breaking its lock', async () => {
    const lock = path.join(await tempDir(), 'x.lock');
    const [holder, breaker] = [deadPid(), deadPid()];
    await fs.writeFile(lock, String(holder));
    // What a waiter killed while breaking that lock leaves: its claim on the break.
    await fs.writeFile(`${lock}.${holder}.break`, `${breaker}-0a0b0c0d0e0f`);
    let holders = 0;
    let mostAtOnce = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        withFileLock(lock, async () => {
          mostAtOnce = Math.max(mostAtOnce, ++holders);
          await yieldToLoop();
          holders--;
        }),
      ),
    );
    expect(mostAtOnce).toBe(1);
    expect(await fs.readdir(path.dirname(lock))).toEqual([]);
  });

  it('never has two processes inside while processes are killed at random points of taking, breaking and releasing it', async () => {
    const dir = await tempDir();
    const lock = path.join(dir, 'x.lock');
    const inside = path.join(dir, 'inside');
    // Each process enters again and again; inside, it puts its pid in `inside` and takes it out again. Finding
    // there the pid of a live process (or seeing it vanish) means two were inside at once.
    const loop = `
      const fs = await import('node:fs/promises');
      const { withFileLock } = await import('./functions/adapters/local/file-lock.ts');
      const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
      for (;;) {
        await withFileLock(${JSON.stringify(lock)}, async () => {
          const before = await fs.readFile(${JSON.stringify(inside)}, 'utf8').catch(() => '');
          if (before && alive(Number(before))) { console.log('overlap ' + before); process.exit(1); }
          await fs.writeFile(${JSON.stringify(inside)}, String(process.pid));
          console.log('in');
          await new Promise((r) => setImmediate(r));
          if ((await fs.readFile(${JSON.stringify(inside)}, 'utf8').catch(() => '')) !== String(process.pid)) { console.log('overlap'); process.exit(1); }
          await fs.rm(${JSON.stringify(inside)});
        });
      }`;
    const children = new Set<ChildProcess>();
    const overlaps: string[] = [];
    let entries = 0;
    let kills = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const start = (): void => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', loop], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      child.stdout!.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (line.startsWith('overlap')) overlaps.push(line);
          if (line !== 'in') continue;
          // Every 15 entries (while 8 kills are left), kill one of the processes wherever it is, and start another.
          if (++entries % 15 === 0 && kills < 8) {
            kills++;
            [...children][kills % children.size]!.kill('SIGKILL');
            start();
          }
          if (entries >= 200) done();
        }
      });
    };
    for (let i = 0; i < 3; i++) start();
    try {
      await finished;
    } finally {
      await Promise.all([...children].map((child) => new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL')))));
    }
    expect(overlaps).toEqual([]);
    expect(kills).toBe(8);
  }, 120_000);
});
