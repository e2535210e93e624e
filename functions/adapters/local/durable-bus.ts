/**
 * An at-least-once message bus on the local filesystem that behaves like
 * Pub/Sub with a dead-letter policy: subscriptions outlive subscribers, a
 * message stays on disk until acknowledged (so it survives a restart), a
 * failed delivery comes back with exponential backoff, and after
 * `maxDeliveryAttempts` it moves to the dead-letter topic with the same
 * attributes Pub/Sub adds. A subscription's filter is applied at publish:
 * a message it does not match is never written for that subscription, so it
 * costs no file and no delivery. Message files are small: they are read and
 * written with synchronous calls (small-files.ts says why).
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
  /** Deliveries started so far (counted before each one, so a crash mid-delivery counts). */
  deliveryAttempt: number;
  notBefore: number;
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

  constructor(
    private readonly bus: DurableLocalBus,
    readonly spec: SubscriptionSpec,
    private readonly dir: string,
    private readonly handler: MessageHandler,
    private readonly log: Logger | undefined,
  ) {}

  async start(): Promise<void> {
    for (const file of jsonFiles(this.dir).sort()) {
      const stored = this.readStored(file.slice(0, -5));
      if (stored) this.schedule(stored.id, stored.notBefore);
    }
  }

  /**
   * A waiting delivery keeps its id and time alone: the message file holds the rest, read when it
   * is delivered, so thousands waiting (a backlog at start-up, nacked ones backing off) hold no copy.
   */
  schedule(id: string, notBefore: number): void {
    if (this.closed) return;
    const timer: NodeJS.Timeout = this.subscriberContext.runInAsyncScope(() =>
      setTimeout(() => {
        this.timers.delete(timer);
        const delivery = this.deliver(id)
          .catch((error: unknown) => this.retryLater(id, error))
          .finally(() => this.inFlight.delete(delivery));
        this.inFlight.add(delivery);
      }, Math.max(0, notBefore - Date.now())),
    );
    this.timers.add(timer);
  }

  private async deliver(id: string): Promise<void> {
    if (this.closed) return;
    const message = this.startDelivery(id);
    if (!message) return;
    try {
      await this.handler(message);
      removeIfExists(this.file(id));
    } catch (error) {
      await this.nack(message, error as Error);
    }
  }

  /**
   * Counts the delivery in the message file and gives the message to hand over. The file's parsed
   * form stays here: a delivery in flight holds the message's data once, as the handler has it.
   */
  private startDelivery(id: string): BusMessage | undefined {
    const stored = this.readStored(id);
    if (!stored) return undefined;
    stored.deliveryAttempt += 1;
    this.bus.writeStored(this.dir, stored);
    return { id, data: ownBuffer(stored.data), attributes: stored.attributes, publishTime: stored.publishTime, deliveryAttempt: stored.deliveryAttempt };
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
      removeIfExists(this.file(message.id));
      return;
    }
    const notBefore = Date.now() + backoffMs(message.deliveryAttempt, this.spec);
    this.log?.info({ messageId: message.id, subscription: this.spec.name, attempt: message.deliveryAttempt, err: error }, 'message nacked; will be redelivered');
    const { id, data, attributes, publishTime, deliveryAttempt } = message;
    this.bus.writeStored(this.dir, { id, data: data.toString('base64'), attributes, publishTime, deliveryAttempt, notBefore });
    this.schedule(id, notBefore);
  }

  /**
   * The bus itself could not record a delivery or its outcome (a full disk): the message file is as
   * it was, so it is tried again after the longest backoff, when space may have returned. Nothing
   * here may throw: it runs on a timer, where an error would end the process.
   */
  private retryLater(id: string, error: unknown): void {
    this.log?.error({ messageId: id, subscription: this.spec.name, err: error }, 'could not record a delivery; retrying later');
    this.schedule(id, Date.now() + this.spec.maxBackoffMs);
  }

  private readStored(id: string): StoredMessage | undefined {
    const file = readFileIfExists(this.file(id));
    return file && (JSON.parse(file.toString('utf8')) as StoredMessage);
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
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
    for (const spec of this.subscriptionsOf(topic)) {
      if (!filterOf(spec)(attributes)) continue;
      this.writeStored(this.queueDir(spec.name), stored);
      this.active.get(spec.name)?.schedule(stored.id, stored.notBefore);
    }
    return stored.id;
  }

  async subscribe(spec: SubscriptionSpec, handler: MessageHandler): Promise<Subscription> {
    if (this.active.has(spec.name)) throw new Error(`subscription ${spec.name} already has a subscriber`);
    await this.createSubscription(spec);
    const subscription = new LocalSubscription(this, spec, this.queueDir(spec.name), handler, this.log);
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

  /** Atomic: a message file is either the old version or the new one. */
  writeStored(dir: string, stored: StoredMessage): void {
    atomicWriteFileSync(path.join(dir, `${stored.id}.json`), JSON.stringify(stored));
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
