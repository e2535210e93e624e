/**
 * Memory held per delivery waiting in the durable local bus: N notifications in flight to the real
 * loader handler (each waiting on its flush, as under a long flush), then N backing off after a
 * failed delivery. Heap and array buffers after a full GC, minus the same before publishing.
 * Run: node --expose-gc --import tsx bench/bus-memory.ts  (BUS_MEMORY_N, default 2000)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DurableLocalBus } from '../functions/adapters/local/durable-bus.js';
import { FsObjectStore } from '../functions/adapters/local/fs-store.js';
import { createLogger } from '../functions/core/logger.js';
import { notificationMessage, toCloudEvent } from '../functions/core/notification.js';
import type { MessageHandler } from '../functions/core/ports.js';
import { uploadLedger } from '../functions/core/uploads.js';
import { loaderHandler } from '../functions/loader/handler.js';
import type { Runtime } from '../functions/runtime.js';
import { envInt, tempDir } from './support.js';

const N = envInt('BUS_MEMORY_N', 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const until = async (done: () => boolean): Promise<void> => {
  while (!done()) await new Promise((r) => setTimeout(r, 20));
};

async function measure(mode: 'in-flight' | 'backing-off'): Promise<number> {
  const dir = await tempDir('bus-memory-');
  const log = createLogger('silent');
  const bus = new DurableLocalBus(path.join(dir, 'bus'), log);
  const store = new FsObjectStore(path.join(dir, 'buckets'), 'b');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reached = 0;
  const rt = { store, bus, log, ledger: uploadLedger(store), config: { deadLetterTopic: 'dead' }, flush: () => (reached++, mode === 'in-flight' ? gate : Promise.reject(new Error('warehouse down'))) } as unknown as Runtime;
  const handler = loaderHandler(rt);
  const spec = { name: 'loader', topic: 'objects', maxDeliveryAttempts: 5, deadLetterTopic: 'dead', minBackoffMs: 600_000, maxBackoffMs: 600_000 };
  const deliver: MessageHandler = (m) => handler(toCloudEvent(m, 'local', spec.topic, spec.name) as never);
  const subscription = await bus.subscribe(spec, deliver);
  const before = used();
  const now = new Date().toISOString();
  for (let i = 0; i < N; i++) {
    const name = `incoming/2026/12/01/${String(i).padStart(8, '0')}-0123456789abcdef0123456789abcdef.csv`;
    const info = { bucket: 'flights-data-local', name, generation: String(1764547200000000 + i), metageneration: '1', size: 12_345, contentType: 'text/csv', timeCreated: now, updated: now, md5Hash: 'XrY7u+Ae7tCTyyK7j1rNww==', crc32c: 'AAAAAA==', metadata: { uploadId: `up-${i.toString(36)}-0123456789abcdef`, sha256: 'f'.repeat(64), rows: '100', contentSha256: 'e'.repeat(64) } };
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info as never);
    await bus.publish('objects', data, attributes);
  }
  await until(() => reached >= N);
  // Let the nacks' rewrites finish.
  await new Promise((r) => setTimeout(r, 200));
  const perDelivery = (used() - before) / N;
  release();
  await subscription.close();
  await bus.close();
  await fs.rm(dir, { recursive: true, force: true });
  return perDelivery;
}

for (const mode of ['in-flight', 'backing-off'] as const) {
  const bytes = await measure(mode);
  console.log(`${mode}: ${Math.round(bytes)} bytes per waiting delivery (N=${N})`);
}
