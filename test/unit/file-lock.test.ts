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
import { removeLockLeftovers, tryFileLock, withFileLock } from '../../functions/adapters/local/file-lock.js';
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

  it('removes the break and claim files that processes killed while taking or breaking it left, once they guard nothing', async () => {
    const lock = path.join(await tempDir(), 'x.lock');
    const [gone, breaker, waiter, holder] = [deadPid(), deadPid(), deadPid(), deadPid()];
    // A breaker killed after removing the lock of `gone` and before its own break file; a waiter killed while waiting.
    await fs.writeFile(`${lock}.${gone}-0a0b0c0d0e0f.break`, `${breaker}-1a1b1c1d1e1f`);
    await fs.writeFile(`${lock}.${breaker}-1a1b1c1d1e1f.claim`, `${breaker}-1a1b1c1d1e1f`);
    await fs.writeFile(`${lock}.${waiter}-2a2b2c2d2e2f.claim`, `${waiter}-2a2b2c2d2e2f`);
    // Later, another holder died holding the lock.
    await fs.writeFile(lock, `${holder}-3a3b3c3d3e3f`);
    await fs.writeFile(`${lock}.${holder}-3a3b3c3d3e3f.claim`, `${holder}-3a3b3c3d3e3f`);
    expect(await withFileLock(lock, async () => 'in')).toBe('in');
    expect(await fs.readdir(path.dirname(lock))).toEqual([]);
  });

  it('keeps, when sweeping, a live process\'s claim file and a break file whose lock still names its dead holder', async () => {
    const dir = await tempDir();
    const lock = path.join(dir, 'x.lock');
    const [holder, breaker, waiter] = [deadPid(), deadPid(), deadPid()];
    await fs.writeFile(lock, `${holder}-0a0b0c0d0e0f`);
    // Still in the way of the next breaker of that lock, who must break it first (removed, two could break the lock).
    const guarding = `x.lock.${holder}-0a0b0c0d0e0f.break`;
    await fs.writeFile(path.join(dir, guarding), `${breaker}-1a1b1c1d1e1f`);
    const live = `x.lock.${process.pid}-2a2b2c2d2e2f.claim`;
    await fs.writeFile(path.join(dir, live), `${process.pid}-2a2b2c2d2e2f`);
    await fs.writeFile(path.join(dir, `x.lock.${waiter}-3a3b3c3d3e3f.claim`), `${waiter}-3a3b3c3d3e3f`);
    expect(await removeLockLeftovers(dir)).toBe(1);
    expect((await fs.readdir(dir)).sort()).toEqual(['x.lock', guarding, live].sort());
  });

  it('takes at start-up a lock whose dead holder\'s breaker was killed too, in one try', async () => {
    const lock = path.join(await tempDir(), 'instance.lock');
    const [holder, breaker] = [deadPid(), deadPid()];
    await fs.writeFile(lock, `${holder}-0a0b0c0d0e0f`);
    await fs.writeFile(`${lock}.${holder}-0a0b0c0d0e0f.break`, `${breaker}-1a1b1c1d1e1f`);
    const taken = await tryFileLock(lock);
    expect(taken).toHaveProperty('release');
    expect(await fs.readdir(path.dirname(lock))).toEqual(['instance.lock']);
    await (taken as { release(): Promise<void> }).release();
    expect(await fs.readdir(path.dirname(lock))).toEqual([]);
  });

  it('takes a lock whose holder died and whose pid now belongs to another process', async () => {
    const lock = path.join(await tempDir(), 'instance.lock');
    // A process takes the lock and dies holding it...
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      const { tryFileLock } = await import('./functions/adapters/local/file-lock.ts');
      await tryFileLock(${JSON.stringify(lock)});
      process.exit(0);`], { cwd: ROOT, stdio: 'inherit' });
    const left = await fs.readFile(lock, 'utf8');
    // ...and the kernel gives its pid to a live process: this one.
    await fs.writeFile(lock, left.replace(/^\d+/, String(process.pid)));
    const taken = await tryFileLock(lock);
    expect(taken).toHaveProperty('release');
    await (taken as { release(): Promise<void> }).release();
  }, 60_000);

  it('leaves a live holder\'s lock alone, whether it records its start or, written without /proc or before starts were, only its pid', async () => {
    const lock = path.join(await tempDir(), 'instance.lock');
    const first = await tryFileLock(lock);
    expect(first).toHaveProperty('release');
    expect(await tryFileLock(lock)).toEqual({ heldBy: process.pid });
    await (first as { release(): Promise<void> }).release();
    for (const holder of [`${process.pid}-0a0b0c0d0e0f`, String(process.pid)]) {
      await fs.writeFile(lock, holder);
      expect(await tryFileLock(lock)).toEqual({ heldBy: process.pid });
    }
    // And a pid-only lock of a dead process is taken.
    await fs.writeFile(lock, String(deadPid()));
    expect(await tryFileLock(lock)).toHaveProperty('release');
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
    // All of them dead now: the next to come breaks what they left, and leaves no break or claim file behind.
    await withFileLock(lock, async () => undefined);
    expect((await fs.readdir(dir)).filter((name) => name !== 'inside')).toEqual([]);
  }, 120_000);
});
