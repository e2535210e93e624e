/**
 * When a process started, as the kernel tells it: this boot's id and the
 * process's start time in clock ticks since boot (field 22 of
 * /proc/<pid>/stat). The kernel gives an exited process's pid to a later one,
 * but never with the same start time in the same boot, so a pid with its start
 * tells a live holder from a reused pid.
 */
import fs from 'node:fs/promises';

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

/** `<boot id hex>-<start ticks>`, or undefined where there is no /proc (macOS) or `pid` cannot be read (gone, or hidden by hidepid). */
export async function processStart(pid: number): Promise<string | undefined> {
  try {
    const [boot, stat] = await Promise.all([fs.readFile(BOOT_ID, 'utf8'), fs.readFile(`/proc/${pid}/stat`, 'utf8')]);
    // The command name (field 2, in parentheses) may hold spaces and parentheses: count fields after its last ')', which is field 3 on.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return start && /^\d+$/.test(start) ? `${boot.trim().replaceAll('-', '')}-${start}` : undefined;
  } catch {
    return undefined;
  }
}
