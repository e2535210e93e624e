/**
 * A mutex shared by the processes of one machine, for the filesystem bucket
 * when several processes use one data directory (`npm run start:emulators`).
 * GCS applies preconditions atomically on the server; on a filesystem the
 * read-check-write of a precondition is atomic only while every writer holds
 * the same lock, and an in-process lock cannot see the other processes.
 *
 * The lock is a file naming its holder (`pid-random-start`, unique per claim),
 * put in place with link(2) from the claim file `<lock>.<holder>.claim`; link
 * fails if the name exists, so the lock is never seen half written. A process
 * killed while holding it (functions-framework exits at once on SIGTERM)
 * leaves the file behind. Removing it must be conditional on its still naming
 * the dead holder, which no single file call is: so the waiters that find the
 * holder dead race to link `<lock>.<holder>.break`, and only the winner
 * re-reads the lock and removes it if it still names that holder. Nothing else
 * removes a lock naming someone else, so a live holder's lock stays put. A
 * winner killed in turn leaves a break file naming a dead holder, broken the
 * same way (the next waiter then breaks the lock itself).
 *
 * "Dead" is the pid gone, or the pid now another process's: the holder records
 * its process's start (process-start.ts), and a pid whose start differs is not
 * the holder. Where /proc is missing (macOS) the holder is `pid-random` and
 * only the pid is checked, as it is for a lock written before starts were.
 *
 * Leftovers. Every file naming a holder is removed by that holder, or by the
 * one breaker holding `<lock>.<holder>.break` after re-reading it; a process
 * killed in between leaves files behind: its claim file (killed anywhere in
 * taking the lock), and a break file, when it was killed after removing the
 * lock (or break file) it broke, or after winning a break that someone else
 * had already done. A file naming a dead holder is never written again, and
 * holders are unique, so once no file of the lock (the lock or a break file)
 * names X, `<lock>.X.break` guards nothing and never will: it can go
 * (`removeLockLeftovers`), even from under a live breaker, who re-reads, finds
 * its target gone, and removes nothing. While the target still names X, the
 * break file stays, so between a breaker's re-read and its remove nobody else
 * can hold the same break: the interleaving that lets two breakers remove a
 * lock (one removes the dead holder's, the other the next holder's) needs a
 * break file removed while its target still names X, which neither a breaker
 * nor the sweep does. A claim file is only ever linked by its own process, so
 * it goes once that process is dead. The sweep runs after a waiter met a dead
 * holder, when `npm start` claims its data directory, and at start-up over
 * the bucket's locks (FsObjectStore.removeTempFiles).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processStart } from './process-start.js';

const pidOf = (holder: string): number => Number.parseInt(holder, 10);

let ownStart: string | undefined;

/** Whether the process `holder` names (`pid-random-start`; `pid-random` or a bare pid without a start) may still run. */
function isAlive(holder: string): boolean {
  const [pid, , ...start] = holder.split('-');
  if (!/^[1-9]\d*$/.test(pid!)) return false;
  try {
    process.kill(Number(pid), 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start.length === 0) return true;
  const now = processStart(Number(pid));
  // Unreadable (hidden by hidepid, or exiting just now): the pid alone says, and it says alive.
  return now === undefined || now === start.join('-');
}

/** Who holds `file` (as written by `withClaimFile`; a bare pid from before), or undefined if no one does. */
async function holderOf(file: string): Promise<string | undefined> {
  return (await fs.readFile(file, 'utf8').catch(() => '')) || undefined;
}

/**
 * Removes `file` (the lock or one of its break files) if the process that holds it has died. True if it met a dead
 * holder (of `file`, or of a break file in the way), so leftovers may be about.
 */
async function breakIfAbandoned(lockFile: string, file: string, claimFile: string): Promise<boolean> {
  const holder = await holderOf(file);
  if (!holder || isAlive(holder)) return false;
  const breakFile = `${lockFile}.${holder}.break`;
  // Another waiter is breaking it, or died doing so: then its break file is broken first, and this one tried once more.
  const won = (await claim(breakFile, claimFile)) || ((await breakIfAbandoned(lockFile, breakFile, claimFile)) && (await claim(breakFile, claimFile)));
  if (!won) return true;
  try {
    // A waiter that read the holder before another broke the lock gets here late: the lock is then someone else's.
    if ((await holderOf(file)) === holder) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(breakFile, { force: true });
  }
  return true;
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
  const start = (ownStart ??= processStart(process.pid));
  const holder = [process.pid, randomBytes(6).toString('hex'), ...(start ? [start] : [])].join('-');
  // Named by its holder, so the sweep can tell a dead process's claim file without reading one still being written.
  const claimFile = `${file}.${holder}.claim`;
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

const LEFTOVER = /^(.+)\.([^.]+)\.(break|claim)$/;

/**
 * Removes from `dir` the claim files of dead processes and the break files that guard nothing any more (see above),
 * of every lock there or only of the lock file named `only`. Safe beside live processes taking and breaking the same
 * locks. Returns how many files it removed.
 */
export async function removeLockLeftovers(dir: string, only?: string): Promise<number> {
  const found = (await fs.readdir(dir).catch(() => [] as string[])).flatMap((name) => {
    const [, lock, holder, kind] = LEFTOVER.exec(name) ?? [];
    return lock && holder && (!only || lock === only) ? [{ name, lock, holder, kind }] : [];
  });
  const breaks = found.filter((f) => f.kind === 'break');
  // Read after listing: a file naming a dead holder is never written again, so what is named now is all it can be.
  const named = new Map<string, Set<string | undefined>>();
  for (const lock of new Set(breaks.map((f) => f.lock))) {
    const files = [lock, ...breaks.filter((f) => f.lock === lock).map((f) => f.name)];
    named.set(lock, new Set(await Promise.all(files.map((f) => holderOf(path.join(dir, f))))));
  }
  const removable: string[] = [];
  for (const f of found) {
    if (f.kind === 'break' ? !named.get(f.lock)!.has(f.holder) : !isAlive(f.holder)) removable.push(f.name);
  }
  await Promise.all(removable.map((name) => fs.rm(path.join(dir, name), { force: true })));
  return removable.length;
}

export type HeldLock = { release(): Promise<void> } | { heldBy: number };

/** Takes the lock if it is free or abandoned, without waiting; otherwise names the live process that holds it. */
export async function tryFileLock(file: string): Promise<HeldLock> {
  const taken = await withClaimFile(file, async (claimFile, holder) => {
    if (await claim(file, claimFile)) return holder;
    await breakIfAbandoned(file, file, claimFile);
    return (await claim(file, claimFile)) ? holder : undefined;
  });
  await removeLockLeftovers(path.dirname(file), path.basename(file));
  if (taken) return { release: () => release(file, taken) };
  return { heldBy: pidOf((await holderOf(file)) ?? '0') };
}

export async function withFileLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  let metDeadHolder = false;
  const holder = await withClaimFile(file, async (claimFile, holder) => {
    for (let delayMs = 1; !(await claim(file, claimFile)); delayMs = Math.min(delayMs * 2, 50)) {
      if (await breakIfAbandoned(file, file, claimFile)) metDeadHolder = true;
      await sleep(delayMs);
    }
    return holder;
  });
  try {
    return await work();
  } finally {
    await release(file, holder);
    // Outside the lock: the sweep is safe at any time, and the next waiter need not wait for it.
    if (metDeadHolder) await removeLockLeftovers(path.dirname(file), path.basename(file));
  }
}
