/**
 * The event bus on Pub/Sub through the official client. Redelivery, backoff
 * and dead-lettering are the subscription's own policies, so a crashed
 * subscriber loses nothing and a poison message stops after
 * `maxDeliveryAttempts` on the dead-letter topic, as with the local bus.
 */
import { PubSub, type ClientConfig, type CreateSubscriptionOptions, type Message, type Subscription as PubSubSubscription, type Topic } from '@google-cloud/pubsub';
import type { Logger } from 'pino';
import type { BusMessage, EventBus, MessageHandler, Subscription, SubscriptionSpec } from '../../core/ports.js';
import type { FunctionSubscription } from '../../core/topology.js';

/** gRPC ALREADY_EXISTS: a concurrent subscriber, or an earlier run, created it first. */
const ALREADY_EXISTS = 6;

/**
 * The client's defaults (100 messages, 10 ms) already favour latency; they are
 * pinned so an upgrade cannot trade notification latency for throughput, with
 * fewer messages per batch since publishers here send about one per upload.
 */
const BATCHING = { maxMessages: 10, maxMilliseconds: 10 };

const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

/** Resolves false if it already existed. */
async function createUnlessExists(create: () => Promise<unknown>): Promise<boolean> {
  try {
    await create();
    return true;
  } catch (e) {
    if ((e as { code?: number }).code !== ALREADY_EXISTS) throw e;
    return false;
  }
}

function toBusMessage(m: Message): BusMessage {
  return {
    id: m.id,
    data: m.data,
    attributes: { ...m.attributes },
    publishTime: m.publishTime.toISOString(),
    // Pub/Sub only counts attempts on subscriptions with a dead-letter policy; 0 means it did not.
    deliveryAttempt: m.deliveryAttempt || 1,
  };
}

export class PubSubBus implements EventBus {
  private readonly client: PubSub;
  private readonly topics = new Map<string, Topic>();
  private readonly open = new Set<PubSubSubscription>();

  /** With `PUBSUB_EMULATOR_HOST` set (or `apiEndpoint` to a non-Google host) the client talks plaintext to the emulator. */
  constructor(
    client: PubSub | ClientConfig = {},
    private readonly log?: Logger,
  ) {
    this.client = client instanceof PubSub ? client : new PubSub(client);
  }

  async publish(topic: string, data: Buffer, attributes: Record<string, string> = {}): Promise<string> {
    return this.topic(topic).publishMessage({ data, attributes });
  }

  async createSubscription(spec: SubscriptionSpec): Promise<void> {
    await this.create(spec);
  }

  /**
   * A push subscription, the direct Pub/Sub trigger of a function: Pub/Sub POSTs each message to
   * `endpoint` (see core/topology.ts pushEndpoint) and waits up to the ack deadline for a 2xx, which
   * acknowledges it; anything else is a nack, so the retry and dead-letter policies apply as on a pull.
   * Unlike a filter, a push config can change: an existing subscription (a pull one made by a runtime,
   * or one pointing at an earlier run's ports) is pointed at `endpoint`.
   */
  async createPushSubscription(spec: FunctionSubscription, endpoint: string): Promise<void> {
    const created = await this.create(spec, { pushConfig: { pushEndpoint: endpoint }, ackDeadlineSeconds: spec.ackDeadlineSeconds });
    if (!created) await this.client.subscription(spec.name).modifyPushConfig({ pushEndpoint: endpoint });
  }

  /** Resolves false if it already existed, after checking it is the same subscription. */
  private async create(spec: SubscriptionSpec, delivery: Pick<CreateSubscriptionOptions, 'pushConfig' | 'ackDeadlineSeconds'> = {}): Promise<boolean> {
    await this.ensureTopic(spec.topic);
    if (spec.deadLetterTopic) await this.ensureTopic(spec.deadLetterTopic);
    const created = await createUnlessExists(() =>
      this.topic(spec.topic).createSubscription(spec.name, {
        ...delivery,
        ...(spec.deadLetterTopic
          ? { deadLetterPolicy: { deadLetterTopic: this.topic(spec.deadLetterTopic).name, maxDeliveryAttempts: spec.maxDeliveryAttempts } }
          : {}),
        retryPolicy: { minimumBackoff: duration(spec.minBackoffMs), maximumBackoff: duration(spec.maxBackoffMs) },
        ...(spec.filter ? { filter: spec.filter } : {}),
      }),
    );
    if (!created) await this.checkExisting(spec);
    return created;
  }

  /**
   * Pub/Sub cannot move a subscription to another topic, nor change its filter, so an existing one keeps
   * whatever it was made with. On another topic it would deliver someone else's messages: that throws.
   * Without a filter it delivers more than asked, which the handlers skip (they check the prefix
   * themselves): only a warning. With another filter it may withhold messages the subscriber needs:
   * that throws, since only deleting the subscription (and its backlog) can fix it.
   */
  private async checkExisting(spec: SubscriptionSpec): Promise<void> {
    const [metadata] = await this.client.subscription(spec.name).getMetadata();
    const topic = this.topic(spec.topic).name;
    if (metadata.topic !== topic) throw new Error(`subscription ${spec.name} exists on ${metadata.topic ?? 'a deleted topic'}, not ${topic}`);
    const existing = metadata.filter ?? '';
    const wanted = spec.filter ?? '';
    if (existing === wanted) return;
    if (!existing) {
      this.log?.warn({ subscription: spec.name, filter: wanted }, 'subscription exists without the filter, which Pub/Sub cannot add; it delivers every message');
      return;
    }
    throw new Error(
      `subscription ${spec.name} exists with filter ${JSON.stringify(existing)}, not ${JSON.stringify(wanted)}; Pub/Sub cannot change a filter: delete the subscription to recreate it`,
    );
  }

  async subscribe(spec: SubscriptionSpec, handler: MessageHandler): Promise<Subscription> {
    await this.createSubscription(spec);
    const subscription = this.client.subscription(spec.name);
    subscription.on('message', (m: Message) => {
      handler(toBusMessage(m)).then(
        () => m.ack(),
        (error: unknown) => {
          this.log?.info({ messageId: m.id, subscription: spec.name, attempt: m.deliveryAttempt, err: error }, 'message nacked; will be redelivered');
          m.nack();
        },
      );
    });
    // Without a listener the client would throw stream errors out of the process; it reconnects by itself.
    subscription.on('error', (err: Error) => this.log?.error({ err, subscription: spec.name }, 'subscription stream error'));
    this.open.add(subscription);
    return {
      close: async () => {
        this.open.delete(subscription);
        await subscription.close();
      },
    };
  }

  async ping(topic: string): Promise<void> {
    await this.client.topic(topic).getMetadata();
  }

  async close(): Promise<void> {
    await Promise.all([...this.open].map((s) => s.close()));
    this.open.clear();
    await Promise.all([...this.topics.values()].map((t) => t.flush()));
    await this.client.close();
  }

  private topic(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = this.client.topic(name, { batching: BATCHING });
      this.topics.set(name, topic);
    }
    return topic;
  }

  private async ensureTopic(name: string): Promise<void> {
    await createUnlessExists(() => this.topic(name).create());
  }
}
