/**
 * A mutex shared by the processes of one machine, for the filesystem bucket
 * when several processes use one data directory (`npm run start:emulators`).
 * GCS applies preconditions atomically on the server; on a filesystem the
 * read-check-write of a precondition is atomic only while every writer holds
 * the same lock, and an in-process lock cannot see the other processes.
 *
 * The lock is a file holding its owner's pid, put in place with link(2),
 * which fails if the name exists, so it is never seen half written. A process
 * killed while holding it (functions-framework exits at once on SIGTERM)
 * leaves the file behind; a waiter that finds the owner dead renames it
 * away, and puts back a live owner's lock if it lost a race to do so.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes the lock if the process that holds it has died. */
async function breakIfAbandoned(file: string): Promise<void> {
  const owner = Number(await fs.readFile(file, 'utf8').catch(() => ''));
  if (!owner || isAlive(owner)) return;
  const moved = `${file}.${randomBytes(6).toString('hex')}.dead`;
  try {
    await fs.rename(file, moved);
  } catch {
    return; // another waiter moved it first
  }
  // Between the read and the rename another waiter may have broken the lock and taken it: give that one back.
  const movedOwner = Number(await fs.readFile(moved, 'utf8').catch(() => ''));
  if (movedOwner !== owner) await fs.link(moved, file).catch(() => undefined);
  await fs.rm(moved, { force: true });
}

export async function withFileLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const claim = `${file}.${randomBytes(6).toString('hex')}.claim`;
  await fs.writeFile(claim, String(process.pid));
  try {
    for (let delayMs = 1; ; delayMs = Math.min(delayMs * 2, 50)) {
      try {
        await fs.link(claim, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        await breakIfAbandoned(file);
        await sleep(delayMs);
      }
    }
  } finally {
    await fs.rm(claim, { force: true });
  }
  try {
    return await work();
  } finally {
    await fs.rm(file, { force: true });
  }
}
