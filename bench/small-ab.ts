/**
 * Small uploads before and after a change: `BEFORE_TREE=<checkout> npx tsx bench/small-ab.ts`.
 * Runs `npm start` from that checkout and from this one (or `AFTER_TREE`; its server with `SMALL_AB_AFTER_ENV`, if set), alternately (`SMALL_AB_RUNS` pairs,
 * each pair in the opposite order to the last), each on a fresh data directory under
 * `BENCH_DIR` (default: the OS temp dir), and drives each with the same closed loop of
 * 100-row files (`SMALL_AB_UPLOADS`, 16 always in flight, after `SMALL_AB_WARM_UP` unmeasured ones) as bench/ingest.ts. Per run:
 * latency percentiles, uploads/s, and the server's CPU time per upload (all its threads),
 * counted from idle to idle again so that the loader's work for these uploads is in it, and how
 * that CPU splits between the server's threads by role (threadRoles below).
 * On a shared machine one run says little: read the medians and the per-pair ratios.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { flightsCsv } from '../test/support/generate-flights.js';
import { envInt, median, percentiles, processCpuMs, startServer, threadCpuMs, type ServerProcess } from './support.js';

const before = process.env.BEFORE_TREE;
if (!before) throw new Error('BEFORE_TREE must name a checkout (with node_modules) to compare with');
const after = path.resolve(process.env.AFTER_TREE ?? '.');
/** Settings for the after side's server only (`NAME=value,…`): AFTER_TREE=BEFORE_TREE then compares a setting, e.g. `DUCKDB_THREADS=1`. */
const afterEnv = Object.fromEntries((process.env.SMALL_AB_AFTER_ENV ?? '').split(',').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));
const runs = envInt('SMALL_AB_RUNS', 3);
const uploads = envInt('SMALL_AB_UPLOADS', 800);
const CONCURRENCY = 16;
// Uploads each server gets before the measured ones. The default leaves the JIT's warm-up in the figures: over the
// first 800 uploads of a fresh server V8 compiles a few hundred functions (docs/benchmarks.md, "JIT warm-up").
const WARM_UP = envInt('SMALL_AB_WARM_UP', 20);
const work = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-small-ab-'));

/** What a thread's stack says it is for; Node names all its threads `node`, and DuckDB's have no names of their own. */
const ROLES: [RegExp, string][] = [
  [/TaskScheduler::ExecuteForever/, 'DuckDB scheduler threads'],
  [/threadpool\.c/, 'libuv pool (DuckDB statements, async fs, crypto)'],
  [/PlatformWorkerThread|DelayedTaskScheduler/, 'V8 platform (concurrent GC, compilation)'],
  [/worker::Worker::Run/, 'worker threads (tsx module hooks, validators)'],
  [/inspector/, 'inspector'],
];

/**
 * Each thread's role, from one `gdb` backtrace of every thread (the process stops for a moment);
 * without gdb (or ptrace rights) each thread is known by its name only. The event loop's thread is `main`.
 */
function threadRoles(pid: number): Map<string, string> {
  const roles = new Map<string, string>([[String(pid), 'main (event loop)']]);
  const trace = spawnSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply all bt 12'], { encoding: 'utf8', timeout: 60_000 });
  for (const thread of (trace.stdout ?? '').split(/^Thread \d+ /m).slice(1)) {
    const tid = /\(LWP (\d+)\)/.exec(thread)?.[1];
    const role = ROLES.find(([pattern]) => pattern.test(thread))?.[1];
    if (tid && role && !roles.has(tid)) roles.set(tid, role);
  }
  return roles;
}

async function threadName(pid: number, tid: string, roles: Map<string, string>): Promise<string> {
  const role = roles.get(tid);
  if (role) return role;
  return (await fs.readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8').catch(() => 'ended')).trim();
}

/** Waits (at most a minute) until the server has used under 5% of a core for half a second. */
async function idle(pid: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const t0 = await processCpuMs(pid);
    await new Promise((r) => setTimeout(r, 500));
    if ((await processCpuMs(pid)) - t0 < 25) return;
  }
}

function upload(url: string, body: Buffer, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', agent, headers: { 'content-type': 'text/csv', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Result {
  side: 'before' | 'after';
  p50: number;
  p95: number;
  rps: number;
  cpuPerUpload: number;
  failed: number;
  /** CPU ms per upload by thread role (or name); `exited threads` is what the process total has beyond the live threads. */
  threads: Map<string, number>;
}

// Distinct files: the same bytes twice would be an idempotent replay.
const files = Array.from({ length: WARM_UP + uploads }, (_, i) => Buffer.from(flightsCsv(100, 7000 + i)));

async function measure(side: Result['side'], root: string): Promise<Result> {
  const dataDir = await fs.mkdtemp(path.join(work, `${side}-`));
  const server: ServerProcess = await startServer({ dataDir, logFile: path.join(work, `${side}.log`), root, env: { LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: String(CONCURRENCY), ...(side === 'after' ? afterEnv : {}) } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    for (const body of files.slice(0, WARM_UP)) await upload(server.url, body, agent);
    await idle(server.pid);
    const cpu0 = await processCpuMs(server.pid);
    const threads0 = await threadCpuMs(server.pid);
    const latencies: number[] = [];
    let failed = 0;
    let next = WARM_UP;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < files.length) {
          const started = performance.now();
          if ((await upload(server.url, files[next++]!, agent)) !== 201) failed += 1;
          latencies.push(performance.now() - started);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await idle(server.pid);
    const cpuPerUpload = ((await processCpuMs(server.pid)) - cpu0) / uploads;
    const threads = new Map<string, number>();
    const roles = threadRoles(server.pid);
    for (const [tid, ms] of await threadCpuMs(server.pid)) {
      const name = await threadName(server.pid, tid, roles);
      threads.set(name, (threads.get(name) ?? 0) + (ms - (threads0.get(tid) ?? 0)) / uploads);
    }
    threads.set('exited threads', Math.max(0, cpuPerUpload - [...threads.values()].reduce((a, b) => a + b, 0)));
    const { p50, p95 } = percentiles(latencies);
    return { side, p50, p95, rps: uploads / seconds, cpuPerUpload, failed, threads };
  } finally {
    agent.destroy();
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (let run = 0; run < runs; run++) {
  const order: [Result['side'], string][] = [
    ['before', before],
    ['after', after],
  ];
  if (run % 2) order.reverse();
  for (const [side, root] of order) {
    const load = os.loadavg()[0]!.toFixed(1);
    const r = await measure(side, root);
    results.push(r);
    console.error(`run ${run + 1} ${side}: p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms, ${r.rps.toFixed(0)} uploads/s, CPU ${r.cpuPerUpload.toFixed(2)} ms/upload, ${r.failed} not 201, load ${load}`);
  }
}
await fs.rm(work, { recursive: true, force: true });

const of = (side: Result['side'], k: keyof Omit<Result, 'side' | 'threads'>): number[] => results.filter((r) => r.side === side).map((r) => r[k]);
console.log(`Closed loop, ${uploads} 100-row uploads, ${CONCURRENCY} in flight, ${runs} interleaved pairs; before: ${before}, after: ${after}${process.env.SMALL_AB_AFTER_ENV ? ` with ${process.env.SMALL_AB_AFTER_ENV}` : ''}

| side | p50 ms | p95 ms | uploads/s | server CPU per upload ms | not 201 |
|---|--:|--:|--:|--:|--:|
${results.map((r) => `| ${r.side} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} | ${r.rps.toFixed(0)} | ${r.cpuPerUpload.toFixed(2)} | ${r.failed} |`).join('\n')}
| median after ÷ before | ${(median(of('after', 'p50')) / median(of('before', 'p50'))).toFixed(2)}× | ${(median(of('after', 'p95')) / median(of('before', 'p95'))).toFixed(2)}× | ${(median(of('after', 'rps')) / median(of('before', 'rps'))).toFixed(2)}× | ${(median(of('after', 'cpuPerUpload')) / median(of('before', 'cpuPerUpload'))).toFixed(2)}× | |
`);

const threadNames = [...new Set(results.flatMap((r) => [...r.threads.keys()]))].sort();
const threadMs = (side: Result['side'], name: string): number => median(results.filter((r) => r.side === side).map((r) => r.threads.get(name) ?? 0));
console.log(`Server CPU per upload by thread (ms, median of the runs)

| thread | before | after |
|---|--:|--:|
${threadNames.map((n) => `| ${n} | ${threadMs('before', n).toFixed(2)} | ${threadMs('after', n).toFixed(2)} |`).join('\n')}
`);
