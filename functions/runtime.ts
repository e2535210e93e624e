/**
 * The composition root: picks the adapters for the configured profile and
 * wires what the cloud wires through infrastructure (the bucket notification
 * and the loader's subscriptions) when running embedded.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { maxBatchBytes } from './adapters/bigquery/billing.js';
import { DurableLocalBus } from './adapters/local/durable-bus.js';
import { FsObjectStore } from './adapters/local/fs-store.js';
import { ResumableSessions } from './adapters/local/resumable.js';
import { LocalUrlSigner } from './adapters/local/url-signer.js';
import { loadConfig, type Config } from './core/config.js';
import { exportLedger, type ExportRecord } from './core/exports.js';
import { signedUploadRecords, type SignedUploadRecord } from './core/landing.js';
import { createLogger } from './core/logger.js';
import { notificationMessage } from './core/notification.js';
import type { EventBus, ObjectStore, Warehouse } from './core/ports.js';
import { topology } from './core/topology.js';
import type { JsonRecords } from './core/records.js';
import { uploadLedger, type UploadLedger } from './core/uploads.js';
import { flushPending, singleFlight } from './loader/flush.js';

export interface Runtime {
  config: Config;
  log: Logger;
  store: ObjectStore;
  bus: EventBus;
  warehouse: Warehouse;
  ledger: UploadLedger;
  exports: JsonRecords<ExportRecord>;
  /** Uploads handed a signed URL, until their file is validated (core/landing.ts). */
  signedUploads: JsonRecords<SignedUploadRecord>;
  /** What the local gateway needs to serve the filesystem bucket's signed URLs; absent on GCS. */
  localBucket?: LocalBucket;
  /** Signs pagination cursors. */
  cursorSecret: string;
  /** Loads what is pending, if the flush spacing allows; one flush at a time per process. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface LocalBucket {
  store: ObjectStore;
  signer: LocalUrlSigner;
  sessions: ResumableSessions;
}

/**
 * A secret kept in the data directory, made on first use, so what it signs
 * (cursors, the local bucket's URLs) survives a restart and verifies in every
 * process sharing the directory.
 */
async function localSecret(dataDir: string, fileName: string): Promise<string> {
  const file = path.join(dataDir, fileName);
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return (await fs.readFile(file, 'utf8')).trim();
}

// Adapters load on demand: a function instance pays the start-up cost (and memory) of the clients it uses, not all of them.

async function createStore(config: Config, signer: LocalUrlSigner | undefined): Promise<ObjectStore> {
  if (config.store === 'gcs') {
    const { GcsObjectStore } = await import('./adapters/gcs/store.js');
    return new GcsObjectStore(config.bucket, { projectId: config.projectId });
  }
  return new FsObjectStore(path.join(config.dataDir, 'buckets'), config.bucket, { crossProcess: config.sharedDataDir, ...(signer ? { signer } : {}) });
}

export async function createBus(config: Config, log: Logger): Promise<EventBus> {
  if (config.bus === 'pubsub') {
    const { PubSubBus } = await import('./adapters/pubsub/bus.js');
    const emulator = config.pubsubEmulatorHost;
    // Naming the universe keeps the client from asking the metadata server, which a laptop does not have.
    const options = emulator ? { apiEndpoint: emulator, emulatorMode: true, universeDomain: 'googleapis.com' } : {};
    return new PubSubBus({ projectId: config.projectId, ...options }, log);
  }
  return new DurableLocalBus(path.join(config.dataDir, 'bus'), log);
}

async function createWarehouse(config: Config): Promise<Warehouse> {
  if (config.warehouse === 'bigquery') {
    const { BigQueryWarehouse } = await import('./adapters/bigquery/warehouse.js');
    return new BigQueryWarehouse({ projectId: config.projectId, ...config.bigQuery });
  }
  const file = path.join(config.dataDir, 'warehouse.duckdb');
  if (config.sharedDataDir) return new (await import('./adapters/duckdb/shared.js')).SharedDuckDbWarehouse(file, config.duckDbThreads);
  return new (await import('./adapters/duckdb/warehouse.js')).DuckDbWarehouse(file, undefined, config.duckDbThreads);
}

/** Adapters made elsewhere (tests: cloud clients pointed at loopback fakes); the rest are made from the config. */
export type Adapters = Partial<Pick<Runtime, 'store' | 'bus' | 'warehouse'>>;

export async function createRuntime(
  config: Config = loadConfig(),
  log: Logger = createLogger(config.logLevel, undefined, config.logFormat),
  adapters: Adapters = {},
): Promise<Runtime> {
  // Each warehouse reads objects where its store keeps them: BigQuery from gs:// URIs, DuckDB from local files.
  if ((config.store === 'gcs') !== (config.warehouse === 'bigquery')) {
    throw new Error(`STORE=${config.store} cannot feed WAREHOUSE=${config.warehouse}: use gcs with bigquery, or local with duckdb`);
  }
  // Cursors must verify on every instance: in the cloud the secret comes from the environment (Secret Manager).
  if (!config.cursorSecret && config.profile === 'cloud') throw new Error('CURSOR_SECRET must be set in the cloud profile');
  const cursor = config.cursorSecret || (await localSecret(config.dataDir, 'cursor.key'));
  // GCS signs with the service account; only the local bucket, which lives in the data directory, needs a key of its own.
  const signer = config.store === 'local' ? new LocalUrlSigner(config.urlSigningSecret || (await localSecret(config.dataDir, 'url-signing.key'))) : undefined;
  if (config.publicUrl) signer?.bind(config.publicUrl);
  const store = adapters.store ?? (await createStore(config, signer));
  const bus = adapters.bus ?? (await createBus(config, log));
  const warehouse = adapters.warehouse ?? (await createWarehouse(config));
  await warehouse.init();
  if (store instanceof FsObjectStore) {
    // What the bucket's notifications (infra/, one per prefix) and the subscriptions do in the cloud.
    const wiring = topology(config);
    for (const spec of [...wiring.subscriptions, ...wiring.retained]) await bus.createSubscription(spec);
    store.onFinalize(async (info) => {
      for (const { prefix, topic } of wiring.notifications) {
        if (!info.name.startsWith(prefix)) continue;
        const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
        await bus.publish(topic, data, attributes);
      }
    });
  }
  const ledger = uploadLedger(store);
  const settings = {
    spacingMs: config.flushSpacingMs,
    leaseMs: config.flushLeaseMs,
    // BigQuery bills a load by the bytes it reads: a batch holds what fits the byte cap. DuckDB bills nothing.
    maxBatchBytes: config.warehouse === 'bigquery' ? maxBatchBytes(config.bigQuery.maximumBytesBilled) : Number.POSITIVE_INFINITY,
    maxFailures: config.maxLoadFailures,
    deadLetterTopic: config.deadLetterTopic,
    heldRetryMs: config.heldRetryMs,
  };
  const flush = singleFlight(() => flushPending({ store, bus, warehouse, ledger, log, settings }), config.flushGatherMs);
  let lastFlush: Promise<void> = Promise.resolve();
  return {
    config,
    log,
    store,
    bus,
    warehouse,
    ledger,
    exports: exportLedger(store),
    signedUploads: signedUploadRecords(store),
    ...(signer ? { localBucket: { store, signer, sessions: new ResumableSessions(path.join(config.dataDir, 'upload-sessions'), store) } } : {}),
    cursorSecret: cursor,
    flush: () => (lastFlush = flush()),
    async close() {
      await lastFlush.catch(() => undefined);
      await bus.close();
      await warehouse.close();
    },
  };
}
