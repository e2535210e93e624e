/**
 * The durable local bus's CPU per delivery, before and after a change to it:
 * `BEFORE_TREE=<checkout> npx tsx bench/bus-delivery.ts`. In this process: each side's
 * `DurableLocalBus` (imported from its checkout), on a fresh directory under `BENCH_DIR` (default:
 * the OS temp dir), delivers `BUS_DELIVERY_N` notifications of an upload's size to a handler that
 * acknowledges at once, published 100 at a time; sides alternate, `BUS_DELIVERY_RUNS` pairs. The
 * publishes are the uploads' work, timed apart and taken off: what is left is the loader's share.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DurableLocalBus } from '../functions/adapters/local/durable-bus.js';
import { envInt, median } from './support.js';

const before = process.env.BEFORE_TREE;
if (!before) throw new Error('BEFORE_TREE must name a checkout to compare with');
type Side = 'before' | 'after';
const roots: Record<Side, string> = { before: path.resolve(before), after: path.resolve(process.env.AFTER_TREE ?? '.') };
const N = envInt('BUS_DELIVERY_N', 3000);
const runs = envInt('BUS_DELIVERY_RUNS', 6);
const WAVE = 100;

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const data = Buffer.alloc(780, 'x');
const attributes = {
  notificationConfig: 'projects/_/buckets/flights-data-local/notificationConfigs/1',
  eventType: 'OBJECT_FINALIZE',
  payloadFormat: 'JSON_API_V1',
  bucketId: 'flights-data-local',
  objectId: 'incoming/2026/12/01/0123456789abcdef0123456789abcdef.csv',
  objectGeneration: '1764547200000000',
  eventTime: new Date().toISOString(),
};

/** CPU µs per delivery, publishes excluded. */
async function measure(side: Side): Promise<number> {
  const Bus = (await import(path.join(roots[side], 'functions/adapters/local/durable-bus.ts'))).DurableLocalBus as typeof DurableLocalBus;
  const dir = await fsp.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-bus-delivery-'));
  const bus = new Bus(dir);
  let delivered = 0;
  try {
    await bus.subscribe({ name: 's', topic: 't', maxDeliveryAttempts: 5, deadLetterTopic: 'd', minBackoffMs: 10, maxBackoffMs: 100 }, async () => void delivered++);
    let publishing = 0;
    const start = cpuMs();
    for (let i = 0; i < N; i += WAVE) {
      const p0 = cpuMs();
      for (let j = 0; j < WAVE; j++) await bus.publish('t', data, attributes);
      publishing += cpuMs() - p0;
      while (delivered < i + WAVE) await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 10));
    if ((await bus.pending('s')) !== 0) throw new Error(`${side}: messages left unacknowledged`);
    return ((cpuMs() - start - publishing) * 1000) / N;
  } finally {
    await bus.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const perDelivery: Record<Side, number[]> = { before: [], after: [] };
const loads = [os.loadavg()[0]!];
for (let run = 0; run < runs; run++) {
  for (const side of (run % 2 ? ['after', 'before'] : ['before', 'after']) as Side[]) perDelivery[side].push(await measure(side));
  loads.push(os.loadavg()[0]!);
}
const list = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' / ');
console.log(`Durable local bus, ${N} deliveries of a ${data.length}-byte notification, ${runs} interleaved pairs; before: ${roots.before}, after: ${roots.after}
CPU µs per delivery (publish excluded): before ${list(perDelivery.before)}; after ${list(perDelivery.after)}; after ÷ before (medians) ${(median(perDelivery.after) / median(perDelivery.before)).toFixed(2)}×
1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`);
