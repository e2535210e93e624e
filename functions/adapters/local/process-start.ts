/**
 * When a process started, as the kernel tells it: this boot's id and the
 * process's start time in clock ticks since boot (field 22 of
 * /proc/<pid>/stat). The kernel gives an exited process's pid to a later one,
 * but never with the same start time in the same boot, so a pid with its start
 * tells a live holder from a reused pid.
 */
import fs from 'node:fs';

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

/**
 * `<boot id hex>-<start ticks>`, or undefined where there is no /proc (macOS) or `pid` cannot be read (gone, or hidden by hidepid).
 * Synchronous: /proc files are made by the kernel from memory, never waiting on a disk, and a judgement
 * of a claim's holder (core/uploads.ts holderIsGone) is a plain predicate.
 */
export function processStart(pid: number): string | undefined {
  try {
    const boot = fs.readFileSync(BOOT_ID, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2, in parentheses) may hold spaces and parentheses: count fields after its last ')', which is field 3 on.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return start && /^\d+$/.test(start) ? `${boot.trim().replaceAll('-', '')}-${start}` : undefined;
  } catch {
    return undefined;
  }
}
