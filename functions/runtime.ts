/**
 * The composition root: picks the adapters for the configured profile and
 * wires what the cloud wires through infrastructure (the bucket notification
 * and the loader's subscriptions) when running embedded.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { DuckDbWarehouse } from './adapters/duckdb/warehouse.js';
import { DurableLocalBus } from './adapters/local/durable-bus.js';
import { FsObjectStore } from './adapters/local/fs-store.js';
import { loadConfig, type Config } from './core/config.js';
import { createLogger } from './core/logger.js';
import { notificationMessage } from './core/notification.js';
import type { EventBus, ObjectStore, SubscriptionSpec, Warehouse } from './core/ports.js';
import { UploadLedger } from './core/uploads.js';
import { INCOMING_PREFIX } from './ingest/store-upload.js';
import { flushPending, singleFlight } from './loader/flush.js';

export interface Runtime {
  config: Config;
  log: Logger;
  store: ObjectStore;
  bus: EventBus;
  warehouse: Warehouse;
  ledger: UploadLedger;
  /** Signs pagination cursors. */
  cursorSecret: string;
  /** Loads what is pending, if the flush spacing allows; one flush at a time per process. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function loaderSubscription(config: Config): SubscriptionSpec {
  return {
    name: config.loaderSubscription,
    topic: config.notificationTopic,
    maxDeliveryAttempts: config.maxDeliveryAttempts,
    deadLetterTopic: config.deadLetterTopic,
    minBackoffMs: config.minBackoffMs,
    maxBackoffMs: config.maxBackoffMs,
  };
}

/** Dead letters are kept on their own subscription; nothing dead-letters them further. */
export function deadLetterSubscription(config: Config): SubscriptionSpec {
  return {
    name: `${config.deadLetterTopic}-recorder`,
    topic: config.deadLetterTopic,
    maxDeliveryAttempts: Number.MAX_SAFE_INTEGER,
    deadLetterTopic: '',
    minBackoffMs: config.minBackoffMs,
    maxBackoffMs: config.maxBackoffMs,
  };
}

/** A secret kept in the data directory, so cursors stay valid across restarts of the embedded pipeline. */
async function localSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'cursor.key');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return (await fs.readFile(file, 'utf8')).trim();
}

export async function createRuntime(config: Config = loadConfig(), log: Logger = createLogger(config.logLevel)): Promise<Runtime> {
  const store = new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket);
  const bus = new DurableLocalBus(path.join(config.dataDir, 'bus'), log);
  const warehouse = new DuckDbWarehouse(path.join(config.dataDir, 'warehouse.duckdb'));
  await warehouse.init();
  // What `gcloud storage buckets notifications create --object-prefix=incoming/` sets up in the cloud.
  await bus.createSubscription(loaderSubscription(config));
  await bus.createSubscription(deadLetterSubscription(config));
  store.onFinalize(async (info) => {
    if (!info.name.startsWith(INCOMING_PREFIX)) return;
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    await bus.publish(config.notificationTopic, data, attributes);
  });
  const ledger = new UploadLedger(store);
  const settings = { spacingMs: config.flushSpacingMs, maxFailures: config.maxLoadFailures, deadLetterTopic: config.deadLetterTopic };
  const flush = singleFlight(() => flushPending({ store, bus, warehouse, ledger, log, settings }));
  let lastFlush: Promise<void> = Promise.resolve();
  return {
    config,
    log,
    store,
    bus,
    warehouse,
    ledger,
    cursorSecret: config.cursorSecret || (await localSecret(config.dataDir)),
    flush: () => (lastFlush = flush()),
    async close() {
      await lastFlush.catch(() => undefined);
      await bus.close();
      await warehouse.close();
    },
  };
}
