/**
 * What the loopback benchmarks share: a generated flights file, the real
 * server as a child process, uploads and waiting for their load, RSS sampling,
 * percentiles, and the machine description that goes next to the figures.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { UploadRecord } from '../functions/core/uploads.js';
import { CsvRecords } from '../functions/ingest/csv-records.js';
import { DEFAULT_LIMITS } from '../functions/ingest/validator.js';
import { KAGGLE_HEADER, flightLines } from '../test/support/generate-flights.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export const tempDir = (prefix: string): Promise<string> => fsp.mkdtemp(path.join(os.tmpdir(), prefix));

/** A bench's size knob from the environment: a positive integer, or `fallback` when unset. */
export const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};

/** Milliseconds since `start` (a performance.now() reading). */
export const since = (start: number): number => performance.now() - start;

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** utime + stime from a /proc stat file, in ms (Linux; USER_HZ = 100). */
export async function statCpuMs(file: string): Promise<number> {
  const fields = (await fsp.readFile(file, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process's CPU time so far, in ms: all its threads, or with `mainThread` its main thread's alone. */
export const processCpuMs = (pid: number, mainThread = false): Promise<number> => statCpuMs(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`);

/** CPU ms of each live thread of a process, by thread id. */
export async function threadCpuMs(pid: number): Promise<Map<string, number>> {
  const byTid = new Map<string, number>();
  for (const tid of await fsp.readdir(`/proc/${pid}/task`)) {
    try {
      byTid.set(tid, await statCpuMs(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // The thread ended between the listing and the read: its time stays in the process total.
    }
  }
  return byTid;
}

/** Lines per written chunk: one write per line would make the generator, not the disk, the bottleneck. */
const LINES_PER_CHUNK = 2_000;

/**
 * Streams `rows` deterministic flight rows (Kaggle layout, with header) to
 * `file` in bounded memory; `firstId` and `seed` let several files hold
 * different rows. Returns the file's size in bytes.
 */
export async function writeFlightsFile(file: string, rows: number, options: { seed?: number; firstId?: number } = {}): Promise<number> {
  function* chunks(): Generator<string> {
    yield `${KAGGLE_HEADER}\n`;
    let batch: string[] = [];
    for (const line of flightLines(rows, options.seed ?? 1, options.firstId ?? 0)) {
      batch.push(line);
      if (batch.length === LINES_PER_CHUNK) {
        yield `${batch.join('\n')}\n`;
        batch = [];
      }
    }
    if (batch.length) yield `${batch.join('\n')}\n`;
  }
  await pipeline(Readable.from(chunks()), fs.createWriteStream(file));
  return (await fsp.stat(file)).size;
}

/**
 * A bare pass of the reader POST /upload and the validator use
 * (functions/ingest/csv-records.ts): records as arrays of fields, no
 * validation, no output. The parser's own limit, and the baseline of the
 * validation targets. Returns ms.
 */
export async function bareRead(file: string): Promise<number> {
  const t0 = performance.now();
  const reader = new CsvRecords(DEFAULT_LIMITS.maxRecordChars, { record: () => undefined });
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 16 })) reader.write(chunk as Buffer);
  reader.end();
  return since(t0);
}

export interface ServerProcess {
  url: string;
  pid: number;
  /** SIGTERM (the server closes its warehouse cleanly), then SIGKILL if it has not exited in time. */
  stop(): Promise<void>;
}

const STARTED = /running at (http:\/\/[^\s]+)/;

/**
 * Starts `functions/local/main.ts` (what `npm start` runs) on a free loopback
 * port. It runs as `node --import tsx` rather than `npx tsx` so that the pid
 * is the server's own (the tsx CLI would put a relay process in between), which
 * RSS sampling and signals need. Its output goes to `logFile`. `root`: another
 * checkout to run (a before/after comparison), with its own node_modules.
 */
/** `npm start`'s node arguments, from package.json, so that a bench runs the server as users do (its V8 flags included). */
export const NPM_START_ARGS: readonly string[] = (() => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = pkg.scripts.start.split(/\s+/);
  if (command !== 'node') throw new Error(`npm start runs ${command}, not node: the bench cannot read its pid`);
  return args;
})();

export async function startServer(options: { dataDir: string; logFile: string; env?: Record<string, string>; timeoutMs?: number; root?: string }): Promise<ServerProcess> {
  const child = spawn(process.execPath, NPM_START_ARGS, {
    cwd: options.root ?? ROOT,
    // Loopback only: the gateway's key check and its per-minute quota (600 calls) are not what a benchmark measures.
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', DATA_DIR: options.dataDir, AUTH: 'off', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // If the benchmark dies, the server must not outlive it.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const log = fs.createWriteStream(options.logFile, { flags: 'a' });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`server did not start within ${options.timeoutMs ?? 60_000} ms; see ${options.logFile}`)), options.timeoutMs ?? 60_000);
    const onData = (chunk: Buffer): void => {
      seen = (seen + chunk.toString()).slice(-4096);
      const match = STARTED.exec(seen);
      if (match) done(() => resolve(match[1]!));
    };
    const onExit = (code: number | null): void => fail(new Error(`server exited with ${code} before listening; see ${options.logFile}`));
    function done(then: () => void): void {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      then();
    }
    function fail(e: Error): void {
      done(() => reject(e));
      child.kill('SIGKILL');
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });

  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
      log.end();
    },
  };
}

/** Sends `file` as a streamed `text/csv` body to POST /upload; resolves with the 201 body. */
export function uploadFile(url: string, file: string): Promise<UploadRecord> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(body) as UploadRecord) : reject(new Error(`upload of ${file}: ${res.statusCode} ${body}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    fs.createReadStream(file).on('error', reject).pipe(req);
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Polls GET /uploads/{id} every `pollMs` until the upload is loaded; `timeoutMs` is a safety net, not a measurement. */
export async function waitForLoad(url: string, uploadId: string, timeoutMs = 600_000, pollMs = 50): Promise<UploadRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = await getJson<UploadRecord>(`${url}/uploads/${uploadId}`);
    if (record.status === 'loaded') return record;
    if (record.status === 'failed') throw new Error(`upload ${uploadId} failed: ${record.reason}`);
    if (Date.now() > deadline) throw new Error(`upload ${uploadId} not loaded after ${timeoutMs} ms (status ${record.status})`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (Linux); undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface RssSampler {
  /** Peak RSS seen since start, in MiB. */
  peak(): number;
  stop(): number;
}

/** Samples a process's RSS every `intervalMs` and keeps the peak. */
export function sampleRss(pid: number, intervalMs = 100): RssSampler {
  let peak = rssMiB(pid) ?? 0;
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid) ?? 0)), intervalMs);
  timer.unref();
  return {
    peak: () => peak,
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** Nearest-rank percentiles of latencies in ms; both sides of a comparison go through this one function. */
export function percentiles(samples: number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
  return { p50: at(50), p95: at(95), p99: at(99) };
}

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machine(): Machine {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
}

/**
 * Writes generated figures into a Markdown file between `<!-- <id>:begin -->`
 * and `<!-- <id>:end -->` markers, so text written by hand around them (the
 * reading of the figures) and other benchmarks' sections survive a re-run.
 * Without markers the block goes at the end of the `## <heading>` section,
 * which is appended (and the file created) if missing.
 */
export async function writeGenerated(file: string, heading: string, id: string, generated: string): Promise<void> {
  const begin = `<!-- ${id}:begin -->`;
  const end = `<!-- ${id}:end -->`;
  const block = [begin, generated.trim(), end];
  const current = await fsp.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '# Benchmarks\n';
    throw e;
  });
  const lines = current.trimEnd().split('\n');
  const from = lines.indexOf(begin);
  const to = lines.indexOf(end);
  const start = lines.indexOf(`## ${heading}`);
  if (from >= 0 && to > from) {
    lines.splice(from, to - from + 1, ...block);
  } else if (start >= 0) {
    const next = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    lines.splice(next < 0 ? lines.length : next, 0, ...block, ...(next < 0 ? [] : ['']));
  } else {
    lines.push('', `## ${heading}`, '', ...block);
  }
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, `${lines.join('\n')}\n`);
}
