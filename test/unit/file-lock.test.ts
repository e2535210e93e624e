/**
 * The cross-process mutex of the filesystem bucket: at most one holder at a
 * time, also when the lock was left behind by a process that died holding it
 * and many waiters race to break it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { withFileLock } from '../../functions/adapters/local/file-lock.js';
import { tempDir } from '../support/pipeline.js';

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
});
