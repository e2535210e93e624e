/**
 * A mutex shared by the processes of one machine, for the filesystem bucket
 * when several processes use one data directory (`npm run start:emulators`).
 * GCS applies preconditions atomically on the server; on a filesystem the
 * read-check-write of a precondition is atomic only while every writer holds
 * the same lock, and an in-process lock cannot see the other processes.
 *
 * The lock is a file naming its holder (`pid-random`, unique per claim), put
 * in place with link(2), which fails if the name exists, so it is never seen
 * half written. A process killed while holding it (functions-framework exits
 * at once on SIGTERM) leaves the file behind. Removing it must be conditional
 * on its still naming the dead holder, which no single file call is: so the
 * waiters that find the holder dead race to link `<lock>.<holder>.break`, and
 * only the winner re-reads the lock and removes it if it still names that
 * holder. Nothing else removes a lock naming someone else, so a live holder's
 * lock stays put. A winner killed in turn leaves a break file naming a dead
 * holder, broken the same way.
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

const pidOf = (holder: string): number => Number.parseInt(holder, 10);

/** Who holds `file` (as written by `withClaimFile`; a bare pid from before), or undefined if no one does. */
async function holderOf(file: string): Promise<string | undefined> {
  return (await fs.readFile(file, 'utf8').catch(() => '')) || undefined;
}

/** Removes `file` (the lock or one of its break files) if the process that holds it has died. */
async function breakIfAbandoned(lockFile: string, file: string, claimFile: string): Promise<void> {
  const holder = await holderOf(file);
  if (!holder || isAlive(pidOf(holder))) return;
  const breakFile = `${lockFile}.${holder}.break`;
  if (!(await claim(breakFile, claimFile))) return breakIfAbandoned(lockFile, breakFile, claimFile);
  try {
    // A waiter that read the holder before another broke the lock gets here late: the lock is then someone else's.
    if ((await holderOf(file)) === holder) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(breakFile, { force: true });
  }
}

/** Puts the claim file at `file` unless the name exists; false if it does. */
async function claim(file: string, claimFile: string): Promise<boolean> {
  try {
    await fs.link(claimFile, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
}

async function withClaimFile<T>(file: string, use: (claimFile: string, holder: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const token = randomBytes(6).toString('hex');
  const holder = `${process.pid}-${token}`;
  const claimFile = `${file}.${token}.claim`;
  await fs.writeFile(claimFile, holder);
  try {
    return await use(claimFile, holder);
  } finally {
    await fs.rm(claimFile, { force: true });
  }
}

/** Removes the lock only if `holder` still holds it, so a late release never frees someone else's lock. */
async function release(file: string, holder: string): Promise<void> {
  if ((await holderOf(file)) === holder) await fs.rm(file, { force: true });
}

export type HeldLock = { release(): Promise<void> } | { heldBy: number };

/** Takes the lock if it is free or abandoned, without waiting; otherwise names the live process that holds it. */
export async function tryFileLock(file: string): Promise<HeldLock> {
  const taken = await withClaimFile(file, async (claimFile, holder) => {
    if (await claim(file, claimFile)) return holder;
    await breakIfAbandoned(file, file, claimFile);
    return (await claim(file, claimFile)) ? holder : undefined;
  });
  if (taken) return { release: () => release(file, taken) };
  return { heldBy: pidOf((await holderOf(file)) ?? '0') };
}

export async function withFileLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  const holder = await withClaimFile(file, async (claimFile, holder) => {
    for (let delayMs = 1; !(await claim(file, claimFile)); delayMs = Math.min(delayMs * 2, 50)) {
      await breakIfAbandoned(file, file, claimFile);
      await sleep(delayMs);
    }
    return holder;
  });
  try {
    return await work();
  } finally {
    await release(file, holder);
  }
}
