/**
 * Test-only crash points: a process SIGKILLs itself at a named step of the
 * loader's work, so the reliability harness (test/reliability/) can prove
 * that a restart and Pub/Sub's redelivery lose and double nothing, with the
 * kill exactly where it claims to be. Off unless CRASH_POINTS_DIR is set. A
 * point is armed by an empty file of its name in that directory; the process
 * that reaches it removes the file and dies. Removal is atomic, so of several
 * processes exactly one dies there, and its replacement runs through.
 */
import fs from 'node:fs';
import path from 'node:path';

export type CrashPoint = 'before-load' | 'during-load' | 'after-load' | 'after-ack';

function disarm(point: CrashPoint): boolean {
  const dir = process.env.CRASH_POINTS_DIR;
  if (!dir) return false;
  try {
    fs.unlinkSync(path.join(dir, point));
    return true;
  } catch {
    return false;
  }
}

const die = (): void => void process.kill(process.pid, 'SIGKILL');

/** Dies here if `point` is armed. */
export function crashPoint(point: CrashPoint): void {
  if (disarm(point)) die();
}

/**
 * Dies right after the reply the current handler is about to return has been
 * written (the framework sends it in microtasks, before the next event-loop
 * phase), if `point` is armed.
 */
export function crashPointAfterReply(point: CrashPoint): void {
  if (disarm(point)) setImmediate(die);
}
