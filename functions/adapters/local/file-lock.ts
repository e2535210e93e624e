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

/** Puts this process's pid at `file` unless the name exists; false if it does. */
async function claim(file: string, claimFile: string): Promise<boolean> {
  try {
    await fs.link(claimFile, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
}

async function withClaimFile<T>(file: string, use: (claimFile: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const claimFile = `${file}.${randomBytes(6).toString('hex')}.claim`;
  await fs.writeFile(claimFile, String(process.pid));
  try {
    return await use(claimFile);
  } finally {
    await fs.rm(claimFile, { force: true });
  }
}

export type HeldLock = { release(): Promise<void> } | { heldBy: number };

/** Takes the lock if it is free or abandoned, without waiting; otherwise names the live process that holds it. */
export async function tryFileLock(file: string): Promise<HeldLock> {
  const taken = await withClaimFile(file, async (claimFile) => {
    if (await claim(file, claimFile)) return true;
    await breakIfAbandoned(file);
    return claim(file, claimFile);
  });
  if (taken) return { release: () => fs.rm(file, { force: true }) };
  return { heldBy: Number(await fs.readFile(file, 'utf8').catch(() => '0')) };
}

export async function withFileLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  await withClaimFile(file, async (claimFile) => {
    for (let delayMs = 1; !(await claim(file, claimFile)); delayMs = Math.min(delayMs * 2, 50)) {
      await breakIfAbandoned(file);
      await sleep(delayMs);
    }
  });
  try {
    return await work();
  } finally {
    await fs.rm(file, { force: true });
  }
}
