/**
 * The composition root: picks the adapters for the configured profile and
 * wires what the cloud wires through infrastructure (the bucket notification
 * and the loader's subscriptions) when running embedded.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BigQueryWarehouse } from './adapters/bigquery/warehouse.js';
import { SharedDuckDbWarehouse } from './adapters/duckdb/shared.js';
import { DuckDbWarehouse } from './adapters/duckdb/warehouse.js';
import { GcsObjectStore } from './adapters/gcs/store.js';
import { DurableLocalBus } from './adapters/local/durable-bus.js';
import { FsObjectStore } from './adapters/local/fs-store.js';
import { PubSubBus } from './adapters/pubsub/bus.js';
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

/**
 * Cursors must verify on every instance: in the cloud the secret comes from the
 * environment (Secret Manager); locally it is kept in the data directory, so
 * cursors also survive a restart.
 */
async function cursorSecret(config: Config): Promise<string> {
  if (config.cursorSecret) return config.cursorSecret;
  if (config.profile === 'cloud') throw new Error('CURSOR_SECRET must be set in the cloud profile');
  const { dataDir } = config;
  const file = path.join(dataDir, 'cursor.key');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return (await fs.readFile(file, 'utf8')).trim();
}

function createStore(config: Config): ObjectStore {
  if (config.store === 'gcs') return new GcsObjectStore(config.bucket, { projectId: config.projectId });
  return new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket, { crossProcess: config.sharedDataDir });
}

export function createBus(config: Config, log: Logger): EventBus {
  if (config.bus === 'pubsub') {
    const emulator = config.pubsubEmulatorHost;
    // Naming the universe keeps the client from asking the metadata server, which a laptop does not have.
    const options = emulator ? { apiEndpoint: emulator, emulatorMode: true, universeDomain: 'googleapis.com' } : {};
    return new PubSubBus({ projectId: config.projectId, ...options }, log);
  }
  return new DurableLocalBus(path.join(config.dataDir, 'bus'), log);
}

function createWarehouse(config: Config): Warehouse {
  if (config.warehouse === 'bigquery') return new BigQueryWarehouse({ projectId: config.projectId, ...config.bigQuery });
  const file = path.join(config.dataDir, 'warehouse.duckdb');
  return config.sharedDataDir ? new SharedDuckDbWarehouse(file) : new DuckDbWarehouse(file);
}

export async function createRuntime(config: Config = loadConfig(), log: Logger = createLogger(config.logLevel)): Promise<Runtime> {
  // Each warehouse reads objects where its store keeps them: BigQuery from gs:// URIs, DuckDB from local files.
  if ((config.store === 'gcs') !== (config.warehouse === 'bigquery')) {
    throw new Error(`STORE=${config.store} cannot feed WAREHOUSE=${config.warehouse}: use gcs with bigquery, or local with duckdb`);
  }
  const secret = await cursorSecret(config);
  const store = createStore(config);
  const bus = createBus(config, log);
  const warehouse = createWarehouse(config);
  await warehouse.init();
  if (store instanceof FsObjectStore) {
    // What `gcloud storage buckets notifications create --object-prefix=incoming/` sets up for a real bucket.
    await bus.createSubscription(loaderSubscription(config));
    await bus.createSubscription(deadLetterSubscription(config));
    store.onFinalize(async (info) => {
      if (!info.name.startsWith(INCOMING_PREFIX)) return;
      const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
      await bus.publish(config.notificationTopic, data, attributes);
    });
  }
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
    cursorSecret: secret,
    flush: () => (lastFlush = flush()),
    async close() {
      await lastFlush.catch(() => undefined);
      await bus.close();
      await warehouse.close();
    },
  };
}
