/**
 * The loader's CPU per small file in this process, from a notification published to the durable
 * local bus to the file `loaded`: bus delivery, the CloudEvent, the loader handler, the flush
 * (lease, markers, DuckDB load, settling). `LOADER_PATH_FILES` canonical 100-row files are stored
 * first (not measured), their notifications held back; then they are announced in waves of
 * `LOADER_PATH_WAVE` (a flush's batch under the closed loop), each wave awaited until loaded.
 * `BEFORE_TREE`: a checkout to compare with, each side imported from its own tree, sides
 * alternating (`LOADER_PATH_RUNS` pairs). Reports process CPU (all threads), this thread's CPU,
 * and store calls per file. `LOADER_PATH_PROFILE=<prefix>`: a V8 CPU profile of each measured window
 * is written to `<prefix>-<side>-<run>.cpuprofile`.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CANONICAL_HEADER } from '../functions/core/schema.js';
import { csvHeader, csvLine } from '../functions/query/formats.js';
import { generateRows } from '../test/query/fixture.js';
import { envInt, median, statCpuMs } from './support.js';

type Side = 'before' | 'after';
const roots: Partial<Record<Side, string>> = { after: path.resolve(process.env.AFTER_TREE ?? '.') };
if (process.env.BEFORE_TREE) roots.before = path.resolve(process.env.BEFORE_TREE);
const fileCount = envInt('LOADER_PATH_FILES', 1280);
const wave = envInt('LOADER_PATH_WAVE', 128);
const runs = envInt('LOADER_PATH_RUNS', 3);
const work = await fsp.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-loader-path-'));

const csvs = Array.from({ length: fileCount }, (_, i) => Buffer.from(csvHeader(CANONICAL_HEADER) + generateRows(100, i + 1).map((row) => csvLine(row, CANONICAL_HEADER)).join('')));
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const mainMs = (): Promise<number> => statCpuMs(`/proc/${process.pid}/task/${process.pid}/stat`);

async function measure(side: Side, run: number): Promise<{ cpu: number; main: number; calls: Record<string, number> }> {
  const root = roots[side]!;
  const m = (p: string) => import(path.join(root, p));
  const { loadConfig } = await m('functions/core/config.ts');
  const { createRuntime } = await m('functions/runtime.ts');
  const { createLogger } = await m('functions/core/logger.ts');
  const { FsObjectStore } = await m('functions/adapters/local/fs-store.ts');
  const { loaderHandler } = await m('functions/loader/handler.ts');
  const { toCloudEvent } = await m('functions/core/notification.ts');
  const { subscriptionFor } = await m('functions/core/topology.ts');
  const dataDir = path.join(work, `${side}-${run}`);
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
  const calls: Record<string, number> = {};
  let counting = false;
  const inner = new FsObjectStore(path.join(dataDir, 'buckets'), config.bucket);
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string' || !counting) return value;
      return (...args: unknown[]) => {
        calls[key] = (calls[key] ?? 0) + 1;
        return value.apply(target, args);
      };
    },
  });
  const rt = await createRuntime(config, createLogger('warn'), { store });
  const spec = subscriptionFor(config, 'loadFlights');
  const queue = path.join(dataDir, 'bus', 'queues', spec.name);
  try {
    const now = new Date().toISOString();
    for (let i = 0; i < fileCount; i++) {
      const uploadId = `u${run}-${i.toString().padStart(6, '0')}`;
      const object = `incoming/2026/12/01/${uploadId}.csv`;
      await rt.ledger.create(uploadId, { uploadId, status: 'stored', object, bytes: csvs[i]!.length, rows: 100, sha256: 'f'.repeat(64), createdAt: now, updatedAt: now });
      await rt.store.write(object, csvs[i]!, { contentType: 'text/csv', metadata: { uploadId, rows: '100' } });
    }
    // The notifications the writes published, held back: each wave publishes its own again.
    const held = fs.readdirSync(queue).sort().map((f) => JSON.parse(fs.readFileSync(path.join(queue, f), 'utf8')) as { data: string; attributes: Record<string, string> });
    for (const f of fs.readdirSync(queue)) fs.unlinkSync(path.join(queue, f));
    const handler = loaderHandler(rt);
    const subscription = await rt.bus.subscribe(spec, (message: unknown) => handler(toCloudEvent(message, 'local', spec.topic, spec.name)));
    counting = true;
    const profiler = process.env.LOADER_PATH_PROFILE ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
      await profiler.post('Profiler.start');
    }
    const cpu0 = cpuMs();
    const main0 = await mainMs();
    // The publishes are the uploads' work, not the loader's: timed apart (the deliveries they schedule run after), and taken off.
    let publishing = 0;
    for (let i = 0; i < held.length; i += wave) {
      const p0 = cpuMs();
      for (const message of held.slice(i, i + wave)) await rt.bus.publish(spec.topic, Buffer.from(message.data, 'base64'), message.attributes);
      publishing += cpuMs() - p0;
      while (fs.readdirSync(queue).length > 0) await new Promise((r) => setTimeout(r, 25));
    }
    const cpu = (cpuMs() - cpu0 - publishing) / fileCount;
    const main = ((await mainMs()) - main0 - publishing) / fileCount;
    counting = false;
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      fs.writeFileSync(`${process.env.LOADER_PATH_PROFILE}-${side}-${run}.cpuprofile`, JSON.stringify(profile));
      profiler.disconnect();
    }
    await subscription.close();
    const loaded = await rt.warehouse.run('SELECT count(*)::INTEGER AS n FROM flights');
    if (loaded.rows[0]?.n !== fileCount * 100) throw new Error(`${side} loaded ${String(loaded.rows[0]?.n)} rows`);
    for (const k of Object.keys(calls)) calls[k] = calls[k]! / fileCount;
    return { cpu, main, calls };
  } finally {
    await rt.close();
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

const sides = Object.keys(roots) as Side[];
const results: Record<Side, { cpu: number; main: number }[]> = { before: [], after: [] };
const loads = [os.loadavg()[0]!];
try {
  for (let run = 0; run < runs; run++) {
    for (const side of run % 2 ? [...sides].reverse() : sides) {
      const r = await measure(side, run);
      results[side].push(r);
      console.error(`run ${run + 1} ${side}: CPU ${r.cpu.toFixed(3)} ms/file, main thread ${r.main.toFixed(3)} ms/file, store calls per file ${JSON.stringify(Object.fromEntries(Object.entries(r.calls).map(([k, v]) => [k, +v.toFixed(2)])))}, load ${os.loadavg()[0]!.toFixed(1)}`);
      loads.push(os.loadavg()[0]!);
    }
  }
} finally {
  await fsp.rm(work, { recursive: true, force: true });
}
const list = (side: Side, k: 'cpu' | 'main'): string => results[side].map((r) => r[k].toFixed(2)).join(' / ');
console.log(`Loader path, ${fileCount} files of 100 rows in waves of ${wave}, ${runs} runs; load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
for (const k of ['cpu', 'main'] as const) {
  const ratio = roots.before ? ` ratio ${(median(results.after.map((r) => r[k])) / median(results.before.map((r) => r[k]))).toFixed(2)}×` : '';
  console.log(`${k}: ${sides.map((s) => `${s} ${list(s, k)}`).join('; ')}${ratio}`);
}
