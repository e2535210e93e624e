/**
 * The three ports every handler talks to. Embedded adapters (filesystem,
 * durable local bus, DuckDB) and cloud adapters (GCS, Pub/Sub, BigQuery)
 * implement the same contracts, so handler code never forks.
 */
import type { Readable } from 'node:stream';
import type { QuerySpec } from './query-spec.js';

// ---------------------------------------------------------------- object store

/** An object as GCS describes it; generations are decimal strings because they exceed 2^53. */
export interface ObjectInfo {
  bucket: string;
  name: string;
  generation: string;
  metageneration: string;
  size: number;
  contentType: string;
  md5Hash?: string;
  crc32c?: string;
  timeCreated: string;
  updated: string;
  metadata: Record<string, string>;
}

export interface Preconditions {
  /** `'0'` means "only if no live object has this name", as in GCS. */
  ifGenerationMatch?: string;
}

export interface WriteOptions extends Preconditions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** Aborting the signal aborts the upload; nothing is left behind. */
  signal?: AbortSignal;
}

export interface CopyOptions extends Preconditions {
  ifSourceGenerationMatch?: string;
  /** Replaces the source's custom metadata on the destination when given. */
  metadata?: Record<string, string>;
}

export interface ObjectStore {
  readonly bucket: string;
  /** Streams `source` into `name`; the object becomes visible only once complete. */
  write(name: string, source: Readable, options?: WriteOptions): Promise<ObjectInfo>;
  read(name: string, options?: { generation?: string }): Readable;
  stat(name: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  copy(source: string, destination: string, options?: CopyOptions): Promise<ObjectInfo>;
  delete(name: string, options?: Preconditions): Promise<void>;
  /** Where a warehouse reads this generation: `gs://bucket/name`, or a filesystem path. */
  uri(name: string, generation: string): string;
}

export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError';
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
}

// ---------------------------------------------------------------- event bus

export interface BusMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: string;
  /** 1 on the first delivery, as Pub/Sub reports it with a dead-letter policy. */
  deliveryAttempt: number;
}

/** Resolving acknowledges the message; throwing or rejecting asks for redelivery. */
export type MessageHandler = (message: BusMessage) => Promise<void>;

export interface SubscriptionSpec {
  name: string;
  topic: string;
  /** After this many failed deliveries the message goes to `deadLetterTopic`. */
  maxDeliveryAttempts: number;
  deadLetterTopic: string;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface EventBus {
  publish(topic: string, data: Buffer, attributes?: Record<string, string>): Promise<string>;
  /** Creates the subscription (and its topics) if missing, so messages published from now on are kept for it. */
  createSubscription(spec: SubscriptionSpec): Promise<void>;
  subscribe(spec: SubscriptionSpec, handler: MessageHandler): Promise<Subscription>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- warehouse

export interface LoadItem {
  object: string;
  generation: string;
  /** Where the warehouse reads it from (see `ObjectStore.uri`). */
  uri: string;
}

export interface LoadOutcome {
  object: string;
  generation: string;
  /** `duplicate`: this (object, generation) was loaded before; nothing was added. */
  status: 'loaded' | 'duplicate';
  rows: number;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}

export interface Warehouse {
  /** Creates the table and the load manifest if they do not exist. */
  init(): Promise<void>;
  /**
   * Loads a batch of canonical CSV objects, all or nothing, together with a
   * manifest entry per (object, generation) so a repeated batch adds no rows.
   */
  load(items: LoadItem[]): Promise<LoadOutcome[]>;
  query(spec: QuerySpec): Promise<QueryResult>;
  /** How many rows (or groups, for an aggregate) match `spec`'s filters, ignoring its cursor and limit. */
  count(spec: QuerySpec): Promise<number>;
  close(): Promise<void>;
}
