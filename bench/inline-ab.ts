/**
 * Large inline uploads before and after a change: `BEFORE_TREE=<checkout> npx tsx bench/inline-ab.ts [sizes in MB, default 100]`.
 * For each size, `INLINE_AB_RUNS` rounds (default 3) on one generated file; each round is a bare
 * pass of our reader over the file (the baseline of issue 17's inline target), then POST /upload
 * (`text/csv` with a Content-Length, as curl sends a file) to `npm start` from that checkout and
 * from this one (or `AFTER_TREE`), in the opposite order to the last round, each on a fresh data
 * directory under `BENCH_DIR` (default: the OS temp dir), as configured by default. Per upload:
 * MB/s and its ratio to the round's bare reader; the server's CPU time from `/proc/<pid>/task/*`
 * split into the main thread, the validator thread (the busiest other thread: nothing else
 * runs for long during one upload) and the rest (V8's helpers, the libuv pool that writes the
 * file, DuckDB starting on the promoted file), also per GB, which moves less with the machine's
 * load than MB/s; and peak RSS (VmHWM at the answer). Loopback only, one upload at a time.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { bareRead, envInt, median, processCpuMs, startServer, threadCpuMs, writeFlightsFile } from './support.js';

const before = process.env.BEFORE_TREE;
if (!before) throw new Error('BEFORE_TREE must name a checkout (with node_modules) to compare with');
const after = path.resolve(process.env.AFTER_TREE ?? '.');
const sizesMb = (process.argv[2] ?? '100').split(',').map(Number);
const runs = envInt('INLINE_AB_RUNS', 3);
const work = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-inline-ab-'));
/** Bytes per generated row, about: the file is generated to the size asked. */
const ROW_BYTES = 116.6;

type Side = 'before' | 'after';

interface Result {
  sizeMb: number;
  side: Side;
  load: number;
  mbs: number;
  ofBare: number;
  cpu: { all: number; main: number; validator: number; rest: number };
  hwm: number;
}

function upload(url: string, file: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv', 'content-length': String(size) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    createReadStream(file, { highWaterMark: 1 << 20 }).pipe(req);
  });
}

async function measure(sizeMb: number, side: Side, root: string, file: string, size: number, bareS: number): Promise<Result> {
  const dataDir = await fs.mkdtemp(path.join(work, `${side}-`));
  const server = await startServer({ dataDir, logFile: path.join(work, `${side}.log`), root, env: { LOG_LEVEL: 'warn', MAX_UPLOAD_BYTES: String(2 ** 31) } });
  try {
    const load = os.loadavg()[0]!;
    const [all0, threads0] = [await processCpuMs(server.pid), await threadCpuMs(server.pid)];
    const t0 = performance.now();
    const status = await upload(server.url, file, size);
    const seconds = (performance.now() - t0) / 1000;
    const [all1, threads1] = [await processCpuMs(server.pid), await threadCpuMs(server.pid)];
    if (status !== 201) throw new Error(`${side}: POST /upload answered ${status}; see ${work}/${side}.log`);
    const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(await fs.readFile(`/proc/${server.pid}/status`, 'utf8'))![1]) / 1024;
    const used = [...threads1].map(([tid, ms]) => [tid, (ms - (threads0.get(tid) ?? 0)) / 1000] as const);
    const main = used.find(([tid]) => tid === String(server.pid))![1];
    const validator = Math.max(0, ...used.filter(([tid]) => tid !== String(server.pid)).map(([, s]) => s));
    const all = (all1 - all0) / 1000;
    return { sizeMb, side, load, mbs: size / 1e6 / seconds, ofBare: bareS / seconds, cpu: { all, main, validator, rest: all - main - validator }, hwm };
  } finally {
    await server.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
const bares: number[] = [];
for (const sizeMb of sizesMb) {
  const file = path.join(work, `flights-${sizeMb}MB.csv`);
  const size = await writeFlightsFile(file, Math.round((sizeMb * 1e6) / ROW_BYTES));
  for (let run = 0; run < runs; run++) {
    const bareS = (await bareRead(file)) / 1000;
    bares.push(size / 1e6 / bareS);
    const order: [Side, string][] = [
      ['before', before],
      ['after', after],
    ];
    if (run % 2) order.reverse();
    for (const [side, root] of order) {
      const r = await measure(sizeMb, side, root, file, size, bareS);
      results.push(r);
      console.error(
        `${sizeMb} MB run ${run + 1} ${side}: ${r.mbs.toFixed(1)} MB/s (${r.ofBare.toFixed(2)}× bare ${(size / 1e6 / bareS).toFixed(1)}), CPU ${r.cpu.all.toFixed(2)} s (main ${r.cpu.main.toFixed(2)}, validator ${r.cpu.validator.toFixed(2)}), VmHWM ${r.hwm.toFixed(0)} MB, load ${r.load.toFixed(1)}`,
      );
    }
  }
  await fs.rm(file);
}
await fs.rm(work, { recursive: true, force: true });

const perGb = (r: Result, s: number): string => ((s * 1000) / r.sizeMb).toFixed(1);
console.log(`Inline uploads, ${runs} interleaved rounds per size; before: ${before}, after: ${after}

| size | side | load (1 min) | MB/s | ÷ bare reader | server CPU s: all / main / validator / rest | CPU s per GB: all / main / validator | VmHWM MB |
|---|---|--:|--:|--:|--:|--:|--:|
${results.map((r) => `| ${r.sizeMb} MB | ${r.side} | ${r.load.toFixed(1)} | ${r.mbs.toFixed(1)} | ${r.ofBare.toFixed(2)}× | ${r.cpu.all.toFixed(2)} / ${r.cpu.main.toFixed(2)} / ${r.cpu.validator.toFixed(2)} / ${r.cpu.rest.toFixed(2)} | ${perGb(r, r.cpu.all)} / ${perGb(r, r.cpu.main)} / ${perGb(r, r.cpu.validator)} | ${r.hwm.toFixed(0)} |`).join('\n')}

Medians by size (after ÷ before in brackets); bare reader ${bares.map((b) => b.toFixed(1)).join(', ')} MB/s.

| size | side | ÷ bare reader | MB/s | CPU s per GB: all | main | validator | VmHWM MB, max |
|---|---|--:|--:|--:|--:|--:|--:|
${sizesMb
  .flatMap((sizeMb) =>
    (['before', 'after'] as const).map((side) => {
      const of = results.filter((r) => r.sizeMb === sizeMb && r.side === side);
      const m = (f: (r: Result) => number): number => median(of.map(f));
      const base = results.filter((r) => r.sizeMb === sizeMb && r.side === 'before');
      const b = (f: (r: Result) => number): number => median(base.map(f));
      const x = (f: (r: Result) => number, digits = 2): string => `${m(f).toFixed(digits)}${side === 'after' ? ` (${(m(f) / b(f)).toFixed(2)}×)` : ''}`;
      const gb = (k: keyof Result['cpu']) => (r: Result): number => (r.cpu[k] * 1000) / r.sizeMb;
      return `| ${sizeMb} MB | ${side} | ${x((r) => r.ofBare)} | ${x((r) => r.mbs, 1)} | ${x(gb('all'), 1)} | ${x(gb('main'), 1)} | ${x(gb('validator'), 1)} | ${Math.max(...of.map((r) => r.hwm)).toFixed(0)} |`;
    }),
  )
  .join('\n')}
`);
