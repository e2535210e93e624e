/**
 * The file lock where /proc cannot tell a process's start (macOS has no /proc; hidepid hides other
 * users' processes): the holder is judged by its pid alone, so a live holder is never broken.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tryFileLock } from '../../functions/adapters/local/file-lock.js';
import { tempDir } from '../support/pipeline.js';

vi.mock('../../functions/adapters/local/process-start.js', () => ({ processStart: () => undefined }));

const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;

describe('tryFileLock without /proc', () => {
  it('names its holder by pid and tag only, and holds it against the next claim', async () => {
    const lock = path.join(await tempDir(), 'instance.lock');
    const first = await tryFileLock(lock);
    expect(await fs.readFile(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}-[0-9a-f]{12}$`));
    expect(await tryFileLock(lock)).toEqual({ heldBy: process.pid });
    await (first as { release(): Promise<void> }).release();
  });

  it('keeps a lock recording a start it cannot check now while the pid lives, and takes it once the pid is gone', async () => {
    const lock = path.join(await tempDir(), 'instance.lock');
    await fs.writeFile(lock, `${process.pid}-0a0b0c0d0e0f-b4662f760f474321928c278cdb46435a-123`);
    expect(await tryFileLock(lock)).toEqual({ heldBy: process.pid });
    await fs.writeFile(lock, `${deadPid()}-0a0b0c0d0e0f-b4662f760f474321928c278cdb46435a-123`);
    expect(await tryFileLock(lock)).toHaveProperty('release');
  });
});
