/**
 * Upload progress for people: percent, bytes, rate and time left. On a
 * terminal one line is redrawn; otherwise (a log, a pipe) each update is a
 * line of its own, at most one every `everyMs`.
 */
import type { UploadProgress } from './upload-client.js';

const MB = 1e6;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** `sent` bytes of `total`, `startedAt`/`startSent` where this run began (a resumed upload starts above 0). */
export function progressLine({ sent, total }: UploadProgress, elapsedMs: number, startSent: number): string {
  const pct = total ? Math.floor((sent / total) * 100) : 100;
  const rate = elapsedMs > 0 ? ((sent - startSent) / elapsedMs) * 1000 : 0;
  const left = sent >= total ? 'done' : rate > 0 ? `${duration((total - sent) / rate)} left` : '? left';
  return `${pct}%  ${(sent / MB).toFixed(1)} / ${(total / MB).toFixed(1)} MB  ${(rate / MB).toFixed(1)} MB/s  ${left}`;
}

export function progressReporter(out: NodeJS.WriteStream, everyMs = 1000, now = () => Date.now()): (p: UploadProgress) => void {
  let started: { at: number; sent: number } | undefined;
  let last = -Infinity;
  return (p) => {
    const t = now();
    started ??= { at: t, sent: p.sent };
    const final = p.sent >= p.total;
    if (!out.isTTY && !final && t - last < everyMs) return;
    last = t;
    const line = progressLine(p, t - started.at, started.sent);
    out.write(out.isTTY ? `\r${line}${final ? '\n' : ''}` : `${line}\n`);
  };
}
