/**
 * An at-least-once message bus on the local filesystem that behaves like
 * Pub/Sub with a dead-letter policy: subscriptions outlive subscribers, a
 * message stays on disk until acknowledged (so it survives a restart), a
 * failed delivery comes back with exponential backoff, and after
 * `maxDeliveryAttempts` it moves to the dead-letter topic with the same
 * attributes Pub/Sub adds. A subscription's filter is applied at publish:
 * a message it does not match is never written for that subscription, so it
 * costs no file and no delivery. Message files are small: they are read and
 * written with synchronous calls (small-files.ts says why). A message file's
 * name counts the deliveries started (`<id>.json`, then `<id>.<n>.json`): a
 * delivery is recorded by renaming it, one call where rewriting it cost a file
 * written and renamed, and a message published by this process is handed to
 * its first delivery as published, not read back from its file.
 */
import { AsyncResource } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { atomicWriteFileSync, readFileIfExists, removeIfExists } from './small-files.js';
import type { Backlog, BusMessage, EventBus, MessageHandler, Subscription, SubscriptionSpec } from '../../core/ports.js';
import { compileFilter, type AttributeFilter } from '../../core/pubsub-filter.js';
import { randomHex } from '../../core/ids.js';

interface StoredMessage {
  id: string;
  data: string;
  attributes: Record<string, string>;
  publishTime: string;
  /** Deliveries started as of the last nack; the file's name counts those started since (countOf). */
  deliveryAttempt: number;
  notBefore: number;
}

/**
 * A message's file after `started` deliveries have started (counted before each one, so a crash
 * mid-delivery counts). Message ids hold no dot.
 */
const fileName = (id: string, started: number): string => (started ? `${id}.${started}.json` : `${id}.json`);

/** The id and deliveries started that a message file's name records. */
function countOf(file: string): { id: string; started: number } {
  const [id = '', started] = file.slice(0, -'.json'.length).split('.');
  return { id, started: Number(started ?? 0) };
}

let sequence = 0;
const messageId = (): string => `${Date.now().toString().padStart(15, '0')}-${(sequence++).toString().padStart(6, '0')}-${randomHex(4)}`;

/** The `.json` files of `dir`; none if it does not exist yet. */
function jsonFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * A subscription is created or rewritten by a rename into its directory, which sets the directory's
 * modification time. File times advance in coarse ticks (a few ms), so a listing is trusted by that
 * time only once the directory has been unchanged for this long: any later change then bears a later time.
 */
const SETTLED_DIRECTORY_MS = 1000;

const keepAll: AttributeFilter = () => true;
/** Compiled once per expression: publish looks them up for every message. */
const compiledFilters = new Map<string, AttributeFilter>();

/** Like Pub/Sub, an empty filter keeps everything. Throws on a filter core/pubsub-filter.ts cannot read. */
function filterOf(spec: SubscriptionSpec): AttributeFilter {
  if (!spec.filter) return keepAll;
  let filter = compiledFilters.get(spec.filter);
  if (!filter) compiledFilters.set(spec.filter, (filter = compileFilter(spec.filter)));
  return filter;
}

/**
 * `base64` decoded into memory of its own. Buffer.from would cut a small message out of Node's shared
 * 8 KiB pool, and one delivery waiting in flight would keep a whole pool slab alive (measured: 2.8 KB
 * a waiting delivery, of its 750-byte notification).
 */
function ownBuffer(base64: string): Buffer {
  const data = Buffer.allocUnsafeSlow(Buffer.byteLength(base64, 'base64'));
  data.write(base64, 'base64');
  return data;
}

/**
 * Deliveries started in one turn of the event loop, at most. Each start reads or renames its message
 * file and runs its handler up to its first wait; a thousand due at once (the deliveries a long flush
 * held, ending together; a backlog at start-up) started in one go held the loop for up to half a
 * second, and every upload arriving meanwhile waited (docs/benchmarks.md, "Bursts of deliveries").
 */
const STARTS_PER_TURN = 16;

export function backoffMs(attempt: number, spec: Pick<SubscriptionSpec, 'minBackoffMs' | 'maxBackoffMs'>): number {
  return Math.min(spec.maxBackoffMs, spec.minBackoffMs * 2 ** Math.max(0, attempt - 1));
}

class LocalSubscription implements Subscription {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  /**
   * The async context deliveries run in: the subscriber's, taken at subscribe time, never the publisher's.
   * A publish happens inside an upload's request, and work scheduled there would run in its crash-guard
   * scope (core/crash-guard.ts): a loader bug would fail that upload, whose file is already stored,
   * instead of the delivery, and the scope would keep the request alive for as long as the loader works.
   */
  private readonly subscriberContext = new AsyncResource('LocalSubscription');

  /** Deliveries started since the last turn of the event loop this subscription waited for (STARTS_PER_TURN). */
  private startedThisTurn = 0;
  private nextTurn?: NodeJS.Immediate;

  /** Messages due while `maxOutstanding` deliveries are in flight, oldest first: id, and deliveries started. */
  private readonly due = new Map<string, number>();
  /**
   * Messages this process published and has not delivered yet, as published, at most `maxOutstanding`
   * of them (beyond, a delivery reads its file): their first delivery needs no read.
   */
  private readonly published = new Map<string, StoredMessage>();

  constructor(
    private readonly bus: DurableLocalBus,
    readonly spec: SubscriptionSpec,
    private readonly dir: string,
    private readonly handler: MessageHandler,
    private readonly log: Logger | undefined,
    private readonly maxOutstanding: number,
  ) {}

  async start(): Promise<void> {
    for (const file of jsonFiles(this.dir).sort()) {
      const { id, started } = countOf(file);
      const stored = this.readStored(id, started);
      if (stored) this.schedule(id, started, stored.notBefore);
    }
  }

  /** A message just published, delivered now. */
  publish(stored: StoredMessage): void {
    if (this.closed) return;
    if (this.published.size < this.maxOutstanding) this.published.set(stored.id, stored);
    this.schedule(stored.id, 0, stored.notBefore);
  }

  /**
   * A waiting delivery keeps its id, count and time alone: the message file holds the rest, read when
   * it is delivered, so thousands waiting (a backlog at start-up, nacked ones backing off) hold no copy.
   */
  private schedule(id: string, started: number, notBefore: number): void {
    if (this.closed) return;
    const timer: NodeJS.Timeout = this.subscriberContext.runInAsyncScope(() =>
      setTimeout(() => {
        this.timers.delete(timer);
        this.due.set(id, started);
        this.deliverDue();
      }, Math.max(0, notBefore - Date.now())),
    );
    this.timers.add(timer);
  }

  /**
   * Starts due deliveries up to `maxOutstanding` at once, as Pub/Sub's subscriber flow control does:
   * a backlog of any size (read at start-up, or a burst of uploads) waits as ids, not as thousands of
   * handlers all at work at once, each holding its message and its own writes.
   */
  private deliverDue(): void {
    for (const [id, started] of this.due) {
      if (this.closed || this.inFlight.size >= this.maxOutstanding) return;
      if (this.startedThisTurn >= STARTS_PER_TURN) return this.resumeNextTurn();
      this.startedThisTurn += 1;
      this.due.delete(id);
      const delivery = this.deliver(id, started).finally(() => {
        this.inFlight.delete(delivery);
        this.deliverDue();
      });
      this.inFlight.add(delivery);
    }
  }

  /** Starts the rest once the loop has turned: timers and I/O (uploads arriving) run first. */
  private resumeNextTurn(): void {
    this.nextTurn ??= this.subscriberContext.runInAsyncScope(() =>
      setImmediate(() => {
        this.nextTurn = undefined;
        this.startedThisTurn = 0;
        this.deliverDue();
      }),
    );
  }

  /** `started`: deliveries started before this one, as the message file's name records them. Never throws. */
  private async deliver(id: string, started: number): Promise<void> {
    if (this.closed) return;
    let message: BusMessage | undefined;
    try {
      message = this.startDelivery(id, started);
    } catch (error) {
      this.retryLater(id, started, error);
      return;
    }
    if (!message) return;
    try {
      await this.handler(message);
      removeIfExists(this.file(id, message.deliveryAttempt));
    } catch (error) {
      try {
        await this.nack(message, error as Error);
      } catch (failure) {
        this.retryLater(id, message.deliveryAttempt, failure);
      }
    }
  }

  /**
   * Counts the delivery in the message file's name and gives the message to hand over. The file's
   * parsed form stays here: a delivery in flight holds the message's data once, as the handler has it.
   */
  private startDelivery(id: string, started: number): BusMessage | undefined {
    const published = this.published.get(id);
    this.published.delete(id);
    const stored = published ?? this.readStored(id, started);
    if (!stored) return undefined;
    // A file last rewritten by a nack from before counts were in names keeps its count inside.
    const attempt = Math.max(started, stored.deliveryAttempt) + 1;
    try {
      fs.renameSync(this.file(id, started), this.file(id, attempt));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return { id, data: ownBuffer(stored.data), attributes: stored.attributes, publishTime: stored.publishTime, deliveryAttempt: attempt };
  }

  private async nack(message: BusMessage, error: Error): Promise<void> {
    if (message.deliveryAttempt >= this.spec.maxDeliveryAttempts) {
      this.log?.warn({ messageId: message.id, subscription: this.spec.name, attempts: message.deliveryAttempt, err: error }, 'message dead-lettered');
      await this.bus.publish(this.spec.deadLetterTopic, message.data, {
        ...message.attributes,
        CloudPubSubDeadLetterSourceDeliveryCount: String(message.deliveryAttempt),
        CloudPubSubDeadLetterSourceSubscription: this.spec.name,
        CloudPubSubDeadLetterSourceLastError: error.message.slice(0, 1024),
      });
      removeIfExists(this.file(message.id, message.deliveryAttempt));
      return;
    }
    const notBefore = Date.now() + backoffMs(message.deliveryAttempt, this.spec);
    this.log?.info({ messageId: message.id, subscription: this.spec.name, attempt: message.deliveryAttempt, err: error }, 'message nacked; will be redelivered');
    const { id, data, attributes, publishTime, deliveryAttempt } = message;
    atomicWriteFileSync(this.file(id, deliveryAttempt), JSON.stringify({ id, data: data.toString('base64'), attributes, publishTime, deliveryAttempt, notBefore }));
    this.schedule(id, deliveryAttempt, notBefore);
  }

  /**
   * The bus itself could not record a delivery or its outcome (a full disk): the message file is as
   * it was, so it is tried again after the longest backoff, when space may have returned. Nothing
   * here may throw: it runs on a timer, where an error would end the process.
   */
  private retryLater(id: string, started: number, error: unknown): void {
    this.log?.error({ messageId: id, subscription: this.spec.name, err: error }, 'could not record a delivery; retrying later');
    this.schedule(id, started, Date.now() + this.spec.maxBackoffMs);
  }

  private readStored(id: string, started: number): StoredMessage | undefined {
    const file = readFileIfExists(this.file(id, started));
    return file && (JSON.parse(file.toString('utf8')) as StoredMessage);
  }

  private file(id: string, started: number): string {
    return path.join(this.dir, fileName(id, started));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    if (this.nextTurn) clearImmediate(this.nextTurn);
    this.timers.clear();
    // Their files stay: the next subscriber delivers them.
    this.due.clear();
    this.published.clear();
    await Promise.allSettled([...this.inFlight]);
  }
}

export class DurableLocalBus implements EventBus {
  private readonly active = new Map<string, LocalSubscription>();
  /** Every subscription, as last read, and the modification time of their directory then. */
  private subscriptions?: { mtimeMs: number; specs: SubscriptionSpec[] };

  constructor(
    private readonly root: string,
    private readonly log?: Logger,
    /** Deliveries in flight per subscription at most; the Pub/Sub client's default flow control (`flowControl.maxMessages`). */
    private readonly maxOutstanding = 1000,
  ) {}

  /**
   * Creates the subscription if it does not exist, so messages published from now on (and matching its
   * filter) are kept for it. Unlike Pub/Sub it rewrites an existing one, filter included, so a data
   * directory made before a filter changed takes the new one.
   */
  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    // Here rather than at the first publish, so a filter this bus cannot apply fails the caller, not the publisher.
    filterOf(spec);
    const file = path.join(this.root, 'subscriptions', `${spec.name}.json`);
    const content = JSON.stringify(spec);
    // Unchanged, it is not rewritten: a start-up with the disk full must not need space.
    if (readFileIfExists(file)?.toString('utf8') !== content) atomicWriteFileSync(file, content);
  }

  async publish(topic: string, data: Buffer, attributes: Record<string, string> = {}): Promise<string> {
    const stored: StoredMessage = {
      id: messageId(),
      data: data.toString('base64'),
      attributes,
      publishTime: new Date().toISOString(),
      deliveryAttempt: 0,
      notBefore: 0,
    };
    let content: string | undefined;
    for (const spec of this.subscriptionsOf(topic)) {
      if (!filterOf(spec)(attributes)) continue;
      atomicWriteFileSync(path.join(this.queueDir(spec.name), fileName(stored.id, 0)), (content ??= JSON.stringify(stored)));
      this.active.get(spec.name)?.publish(stored);
    }
    return stored.id;
  }

  async subscribe(spec: SubscriptionSpec, handler: MessageHandler): Promise<Subscription> {
    if (this.active.has(spec.name)) throw new Error(`subscription ${spec.name} already has a subscriber`);
    await this.createSubscription(spec);
    const subscription = new LocalSubscription(this, spec, this.queueDir(spec.name), handler, this.log, this.maxOutstanding);
    this.active.set(spec.name, subscription);
    await subscription.start();
    return {
      close: async () => {
        this.active.delete(spec.name);
        await subscription.close();
      },
    };
  }

  /** A topic exists here once a subscription names it; the bus is its directory. */
  async ping(topic: string): Promise<void> {
    if (this.subscriptionsOf(topic).length === 0) throw new Error(`no subscription on topic ${topic}`);
  }

  /** Messages kept for a subscription and not yet acknowledged. */
  async pending(subscription: string): Promise<number> {
    return jsonFiles(this.queueDir(subscription)).length;
  }

  /** A message id starts with its publish time (messageId above) and keeps it across redeliveries. */
  async backlog(subscription: string): Promise<Backlog> {
    const files = jsonFiles(this.queueDir(subscription));
    if (files.length === 0) return { messages: 0 };
    return { messages: files.length, oldestPublishMs: Math.min(...files.map((f) => Number(f.slice(0, 15)))) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.active.values()].map((s) => s.close()));
    this.active.clear();
  }

  private subscriptionsOf(topic: string): SubscriptionSpec[] {
    return this.allSubscriptions().filter((s) => s.topic === topic);
  }

  /**
   * Looked up at each publish, since another process sharing the directory may have created a
   * subscription, but read again only when the directory has changed: one stat instead of a
   * listing and a read of every subscription, for every message.
   */
  private allSubscriptions(): SubscriptionSpec[] {
    const dir = path.join(this.root, 'subscriptions');
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(dir).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    if (this.subscriptions?.mtimeMs === mtimeMs) return this.subscriptions.specs;
    const specs = jsonFiles(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as SubscriptionSpec);
    this.subscriptions = Date.now() - mtimeMs > SETTLED_DIRECTORY_MS ? { mtimeMs, specs } : undefined;
    return specs;
  }

  private queueDir(subscription: string): string {
    return path.join(this.root, 'queues', subscription);
  }
}
