/**
 * What this process takes down with it if it ends before stopping its
 * children: the functions-framework processes and the emulator.
 *
 * Two ways, because neither covers every end: an 'exit' listener (a crash,
 * process.exit), shared by all (one each passed Node's limit of ten listeners
 * once nine functions and the emulator ran); and a reaper, a small process of
 * its own group that is told each child's pid on a pipe and kills those left
 * when the pipe closes, which is also when this process was SIGKILLed and ran
 * no listener at all (the OOM killer, a harness killing `start:emulators`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/** `+<pid>` / `-<pid>` lines on stdin; a negative pid is a process group. At end of input, SIGKILL to every pid still listed. */
const REAPER = `
const targets = new Set();
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  const lines = (pending + chunk).split('\\n');
  pending = lines.pop();
  for (const line of lines) (line[0] === '+' ? targets.add(line.slice(1)) : targets.delete(line.slice(1)));
});
process.stdin.on('end', () => {
  for (const target of targets) try { process.kill(Number(target), 'SIGKILL'); } catch {}
});
`;

const targets = new Set<number>();
let reaper: ChildProcess | undefined;

function killAll(): void {
  for (const target of targets) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function tellReaper(line: string): void {
  if (!reaper) {
    // Its own group, so a signal to ours (Ctrl-C) does not take it before it is needed.
    reaper = spawn(process.execPath, ['-e', REAPER], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    reaper.unref();
    (reaper.stdin as Socket).unref();
    reaper.stdin!.on('error', () => undefined);
  }
  reaper.stdin!.write(`${line}\n`);
}

/** Registers a child's pid (or a process group as -pgid) to SIGKILL if this process ends first; the returned function unregisters it, once the child is gone. */
export function killOnExit(target: number | undefined): () => void {
  // A child that failed to spawn has no pid and nothing to kill.
  if (target === undefined) return () => undefined;
  if (targets.size === 0) process.once('exit', killAll);
  targets.add(target);
  tellReaper(`+${target}`);
  return () => {
    if (!targets.delete(target)) return;
    tellReaper(`-${target}`);
    if (targets.size === 0) process.off('exit', killAll);
  };
}
