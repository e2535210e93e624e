/**
 * tools/kill-on-exit.ts: the functions and the emulator that `start:emulators`
 * (and the test harness) start do not outlive it, even when it is SIGKILLed
 * and runs no exit listener. A parent process registers children and is
 * killed; the children must go with it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';

const MODULE = pathToFileURL(fileURLToPath(new URL('../../tools/kill-on-exit.ts', import.meta.url))).href;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Waits until `pid` is gone; false if it is still there after `ms`. */
async function gone(pid: number, ms = 15_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (!alive(pid)) return true;
  return false;
}

/**
 * Starts a parent that spawns `sleep` children as told, registers some, and
 * prints the pids it was asked for once the registrations are written.
 */
async function parent(script: string): Promise<{ pids: Record<string, number>; kill: () => Promise<void> }> {
  const dir = await tempDir();
  const file = path.join(dir, 'parent.ts');
  await fs.writeFile(
    file,
    `import { spawn } from 'node:child_process';
import { killOnExit } from '${MODULE}';
const sleeper = (detached = false) => spawn('sh', ['-c', detached ? 'sleep 600 & sleep 600' : 'exec sleep 600'], { stdio: 'ignore', detached });
const pids: Record<string, number> = {};
${script}
setInterval(() => undefined, 1000);
// The registrations are on the reaper's pipe by the next turn.
setTimeout(() => console.log(JSON.stringify(pids)), 200);
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  while (!out.includes('\n')) {
    if (child.exitCode !== null) throw new Error('the parent exited early');
    await sleep(50);
  }
  return {
    pids: JSON.parse(out) as Record<string, number>,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

describe('killOnExit', () => {
  it('takes a registered child and a registered process group down with a parent that was SIGKILLed, and leaves an unregistered one', async () => {
    const p = await parent(`
const one = sleeper(); killOnExit(one.pid); pids.one = one.pid!;
const group = sleeper(true); killOnExit(-group.pid!); pids.group = group.pid!;
const forgotten = sleeper(); killOnExit(forgotten.pid)(); pids.forgotten = forgotten.pid!;
`);
    const { one, group, forgotten } = p.pids as { one: number; group: number; forgotten: number };
    expect([one, group, forgotten].every(alive)).toBe(true);
    await p.kill();
    expect(await gone(one)).toBe(true);
    expect(await gone(group)).toBe(true);
    // The group's other member (the backgrounded sleep) went too: nothing is left in the group.
    expect(await gone(-group)).toBe(true);
    // Unregistered once it was stopped by its owner: not the reaper's to kill.
    await sleep(300);
    expect(alive(forgotten)).toBe(true);
    process.kill(forgotten, 'SIGKILL');
  }, 60_000);
});
