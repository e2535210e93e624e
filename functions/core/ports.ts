/**
 * The three ports every handler talks to. Embedded adapters (filesystem,
 * durable local bus, DuckDB) and cloud adapters (GCS, Pub/Sub, BigQuery)
 * implement the same contracts, so handler code never forks.
 */
import type { Readable } from 'node:stream';
import type { ExportSpec, QuerySpec } from './query-spec.js';

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
  /**
   * false: nobody compares this object's bytes by MD5 (a staging object, copied and deleted; a JSON record), so
   * the local store, which computes md5Hash itself on the event loop, leaves it out, as GCS does
   * for a composite object. GCS computes it server-side whatever this says.
   */
  md5?: false;
}

export interface CopyOptions extends Preconditions {
  ifSourceGenerationMatch?: string;
  /** Replaces the source's custom metadata on the destination when given. */
  metadata?: Record<string, string>;
}

/**
 * A request a client may make straight to the bucket, without credentials:
 * `read` downloads the object; `resumable` starts a resumable upload session
 * (POST, answered 201 with the session URI in Location), after which the
 * client PUTs the bytes in `Content-Range` chunks, as with GCS.
 */
export interface SignedUrlOptions {
  action: 'read' | 'resumable';
  expiresAt: Date;
  /** Bound in the signature: the request must carry exactly this Content-Type. */
  contentType?: string;
  /** Bound in the signature (as X-Upload-Content-Length): the upload must be exactly this many bytes. */
  contentLength?: number;
  /** Bound in the signature (as x-goog-if-generation-match): '0' makes the URL useless once the object exists. */
  ifGenerationMatch?: string;
}

export interface SignedRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Headers the client must send exactly as given: they are part of the signature. */
  headers: Record<string, string>;
  expiresAt: string;
}

export interface ObjectStore {
  readonly bucket: string;
  /**
   * Writes `source` to `name`; the object becomes visible only once complete.
   * A Buffer (a record, a marker, a small file already in memory) goes in one
   * request; a Readable streams, for sizes not known in advance.
   */
  write(name: string, source: Readable | Buffer, options?: WriteOptions): Promise<ObjectInfo>;
  read(name: string, options?: { generation?: string }): Readable;
  stat(name: string): Promise<ObjectInfo | undefined>;
  /**
   * The live generation whole, with its description (undefined if there is none), for an object
   * small enough to hold in memory: a record, a marker. The local store reads it in one file read,
   * where `stat` and then `read` cost two and a stream; GCS takes the same two requests either way.
   * Throws ObjectNotFoundError if the object was replaced or deleted between those two.
   */
  readSmall(name: string): Promise<{ info: ObjectInfo; bytes: Buffer } | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  copy(source: string, destination: string, options?: CopyOptions): Promise<ObjectInfo>;
  delete(name: string, options?: Preconditions): Promise<void>;
  /** Where a warehouse reads this generation: `gs://bucket/name`, or a filesystem path. */
  uri(name: string, generation: string): string;
  /** A short-lived URL that lets a client without credentials make one kind of request on `name`. */
  signedUrl(name: string, options: SignedUrlOptions): Promise<SignedRequest>;
}

export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError';
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
}

/** The store is overloaded or briefly down (408, 429 or 5xx once its client stopped retrying): worth trying again later. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
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
  /**
   * A Pub/Sub filter expression on the attributes (e.g. `hasPrefix(attributes.objectId, "incoming/")`):
   * only messages published to `topic` that match it are kept for the subscription, the rest are never
   * delivered. Pub/Sub fixes it when it creates the subscription; the local bus reads the subset in
   * core/pubsub-filter.ts. Absent or empty: every message.
   */
  filter?: string;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface EventBus {
  publish(topic: string, data: Buffer, attributes?: Record<string, string>): Promise<string>;
  /** Creates the subscription (and its topics) if missing, so messages published from now on are kept for it. */
  createSubscription(spec: SubscriptionSpec): Promise<void>;
  subscribe(spec: SubscriptionSpec, handler: MessageHandler): Promise<Subscription>;
  /**
   * What a subscription holds unacknowledged, for the local metrics. Pub/Sub has
   * none here: Cloud Monitoring reports num_undelivered_messages and oldest_unacked_message_age.
   */
  backlog?(subscription: string): Promise<Backlog>;
  /** Resolves if the bus answers and `topic` exists (readiness: GET /health). */
  ping(topic: string): Promise<void>;
  close(): Promise<void>;
}

export interface Backlog {
  messages: number;
  /** Publish time (ms since the epoch) of the oldest unacknowledged message; absent when there is none. */
  oldestPublishMs?: number;
}

// ---------------------------------------------------------------- warehouse

export interface LoadItem {
  object: string;
  generation: string;
  /** Where the warehouse reads it from (see `ObjectStore.uri`). */
  uri: string;
  /** The object's size; BigQuery sizes the job's byte cap from it (absent: the configured cap). */
  bytes?: number;
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

/** Where and how an export writes: gzip CSV files with a header, under `prefix` in `store`'s bucket. */
export interface ExportTarget {
  store: ObjectStore;
  /** Ends in '/'; the files are named `<prefix><n>.csv.gz` in result order. */
  prefix: string;
  /** Names the warehouse job, so a retried export reuses the first attempt's job. */
  jobId: string;
}

export interface ExportOutcome {
  rows: number;
}

/** The warehouse is overloaded or briefly down (its client gave up retrying a 408, 429 or 5xx): no file's fault; try again later. */
export class WarehouseUnavailableError extends Error {
  override readonly name: string = 'WarehouseUnavailableError';
}

/**
 * The warehouse answered, and this one job failed for the warehouse's own
 * trouble (BigQuery's `internalError`, `backendError`): worth retrying, but
 * possibly tied to the job's input, so the loader holds its files back
 * without stopping the other batches. Elsewhere it is an outage like any other.
 */
export class WarehouseJobRetryableError extends WarehouseUnavailableError {
  override readonly name = 'WarehouseJobRetryableError';
}

/** A warehouse job that failed for a reason worth showing the client (a byte cap, a bad query), not a server fault. */
export class WarehouseJobError extends Error {
  override readonly name: string = 'WarehouseJobError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Warehouse {
  /** Readies the warehouse: DuckDB creates its tables; BigQuery's are created by infra/, not by a function. */
  init(): Promise<void>;
  /**
   * Loads a batch of canonical CSV objects, all or nothing, together with a
   * manifest entry per (object, generation) so a repeated batch adds no rows.
   */
  load(items: LoadItem[]): Promise<LoadOutcome[]>;
  query(spec: QuerySpec): Promise<QueryResult>;
  /** How many rows (or groups, for an aggregate) match `spec`'s filters, ignoring its cursor and limit. */
  count(spec: QuerySpec): Promise<number>;
  /**
   * Writes every row `spec` matches (no page limit unless `spec.limit` is set;
   * no cursor) to the bucket as gzip CSV, columns in `columns`' order.
   */
  exportCsv(spec: ExportSpec, columns: readonly string[], target: ExportTarget): Promise<ExportOutcome>;
  /** Resolves if the warehouse answers, at no cost (readiness: GET /health). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
