/**
 * Small uploads before and after a change: `BEFORE_TREE=<checkout> npx tsx bench/small-ab.ts`.
 * Runs `npm start` from that checkout and from this one (or `AFTER_TREE`), alternately (`SMALL_AB_RUNS` pairs,
 * each pair in the opposite order to the last), each on a fresh data directory under
 * `BENCH_DIR` (default: the OS temp dir), and drives each with the same closed loop of
 * 100-row files (`SMALL_AB_UPLOADS`, 16 always in flight) as bench/ingest.ts. Per run:
 * latency percentiles, uploads/s, and the server's CPU time per upload (all its threads),
 * counted from idle to idle again so that the loader's work for these uploads is in it.
 * On a shared machine one run says little: read the medians and the per-pair ratios.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { flightsCsv } from '../test/support/generate-flights.js';
import { percentiles, startServer, type ServerProcess } from './support.js';

const before = process.env.BEFORE_TREE;
if (!before) throw new Error('BEFORE_TREE must name a checkout (with node_modules) to compare with');
const after = path.resolve(process.env.AFTER_TREE ?? '.');
const runs = Number(process.env.SMALL_AB_RUNS ?? 3);
const uploads = Number(process.env.SMALL_AB_UPLOADS ?? 800);
const CONCURRENCY = 16;
const WARM_UP = 20;
const work = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-small-ab-'));

async function cpuMs(pid: number): Promise<number> {
  const fields = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime of every thread, in ticks of 10 ms
}

/** Waits (at most a minute) until the server has used under 5% of a core for half a second. */
async function idle(pid: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const t0 = await cpuMs(pid);
    await new Promise((r) => setTimeout(r, 500));
    if ((await cpuMs(pid)) - t0 < 25) return;
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
}

// Distinct files: the same bytes twice would be an idempotent replay.
const files = Array.from({ length: WARM_UP + uploads }, (_, i) => Buffer.from(flightsCsv(100, 7000 + i)));

async function measure(side: Result['side'], root: string): Promise<Result> {
  const dataDir = await fs.mkdtemp(path.join(work, `${side}-`));
  const server: ServerProcess = await startServer({ dataDir, logFile: path.join(work, `${side}.log`), root, env: { LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: String(CONCURRENCY) } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    for (const body of files.slice(0, WARM_UP)) await upload(server.url, body, agent);
    await idle(server.pid);
    const cpu0 = await cpuMs(server.pid);
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
    const cpuPerUpload = ((await cpuMs(server.pid)) - cpu0) / uploads;
    const { p50, p95 } = percentiles(latencies);
    return { side, p50, p95, rps: uploads / seconds, cpuPerUpload, failed };
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

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const of = (side: Result['side'], k: keyof Omit<Result, 'side'>): number[] => results.filter((r) => r.side === side).map((r) => r[k]);
console.log(`Closed loop, ${uploads} 100-row uploads, ${CONCURRENCY} in flight, ${runs} interleaved pairs; before: ${before}, after: ${after}

| side | p50 ms | p95 ms | uploads/s | server CPU per upload ms | not 201 |
|---|--:|--:|--:|--:|--:|
${results.map((r) => `| ${r.side} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} | ${r.rps.toFixed(0)} | ${r.cpuPerUpload.toFixed(2)} | ${r.failed} |`).join('\n')}
| median after ÷ before | ${(median(of('after', 'p50')) / median(of('before', 'p50'))).toFixed(2)}× | ${(median(of('after', 'p95')) / median(of('before', 'p95'))).toFixed(2)}× | ${(median(of('after', 'rps')) / median(of('before', 'rps'))).toFixed(2)}× | ${(median(of('after', 'cpuPerUpload')) / median(of('before', 'cpuPerUpload'))).toFixed(2)}× | |
`);
