import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PubSubBus } from '../../functions/adapters/pubsub/bus.js';
import type { BusMessage, SubscriptionSpec } from '../../functions/core/ports.js';

// The real emulator, started once for the run by test/support/global-setup.ts.
const emulator = { host: inject('pubsubEmulatorHost'), projectId: 'demo' };
let bus: PubSubBus;
let admin: PubSub;

beforeAll(() => {
  // Naming the universe keeps gax from asking the GCE metadata server for it, which it
  // otherwise does even against the emulator; naming it also ends the automatic
  // emulator detection, hence emulatorMode.
  const options = { projectId: emulator.projectId, apiEndpoint: emulator.host, emulatorMode: true, universeDomain: 'googleapis.com' };
  bus = new PubSubBus(options);
  admin = new PubSub(options);
});

afterAll(async () => {
  await bus?.close();
  await admin?.close();
});

const unique = (base: string) => `${base}-${randomBytes(4).toString('hex')}`;

function spec(overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec {
  return {
    name: unique('loader'),
    topic: unique('objects'),
    deadLetterTopic: unique('dead-letter'),
    maxDeliveryAttempts: 5,
    minBackoffMs: 100,
    maxBackoffMs: 200,
    ...overrides,
  };
}

/** Polls until `check` passes; the test's own timeout bounds it. */
async function eventually(check: () => void): Promise<void> {
  for (;;) {
    try {
      check();
      return;
    } catch {
      await sleep(50);
    }
  }
}

describe('PubSubBus on the Pub/Sub emulator', () => {
  it('delivers data and attributes, first attempt counted as 1, and creates the subscription with its policies', async () => {
    const s = spec();
    const received: BusMessage[] = [];
    const sub = await bus.subscribe(s, async (m) => {
      received.push(m);
    });
    const ids = await Promise.all(
      ['a', 'b', 'c'].map((k) => bus.publish(s.topic, Buffer.from(`payload-${k}`), { objectId: `flights/${k}.csv`, eventType: 'OBJECT_FINALIZE' })),
    );
    await eventually(() => expect(received).toHaveLength(3));
    await sub.close();

    expect(new Set(received.map((m) => m.id))).toEqual(new Set(ids));
    const byObject = new Map(received.map((m) => [m.attributes.objectId, m]));
    for (const k of ['a', 'b', 'c']) {
      const m = byObject.get(`flights/${k}.csv`);
      expect(m?.data.toString()).toBe(`payload-${k}`);
      expect(m?.attributes.eventType).toBe('OBJECT_FINALIZE');
      expect(m?.deliveryAttempt).toBe(1);
      expect(Number.isNaN(Date.parse(m?.publishTime ?? ''))).toBe(false);
    }

    const [metadata] = await admin.subscription(s.name).getMetadata();
    expect(metadata.topic).toBe(`projects/${emulator.projectId}/topics/${s.topic}`);
    expect(metadata.deadLetterPolicy).toMatchObject({
      deadLetterTopic: `projects/${emulator.projectId}/topics/${s.deadLetterTopic}`,
      maxDeliveryAttempts: 5,
    });
    expect(metadata.retryPolicy?.minimumBackoff).toMatchObject({ nanos: 100_000_000 });
    expect(metadata.retryPolicy?.maximumBackoff).toMatchObject({ nanos: 200_000_000 });
  }, 60_000);

  it('redelivers a failing message with growing deliveryAttempt, then dead-letters it after maxDeliveryAttempts', async () => {
    const s = spec();
    const dead: BusMessage[] = [];
    // The dead-letter topic keeps nothing without a subscription, so observe it first.
    const deadSub = await bus.subscribe(spec({ topic: s.deadLetterTopic }), async (m) => {
      dead.push(m);
    });
    const attempts: number[] = [];
    const sub = await bus.subscribe(s, async (m) => {
      attempts.push(m.deliveryAttempt);
      throw new Error('loader failed');
    });
    await bus.publish(s.topic, Buffer.from('poison'), { objectId: 'flights/bad.csv' });

    await eventually(() => expect(dead).toHaveLength(1));
    await sub.close();
    await deadSub.close();

    expect(attempts).toEqual([1, 2, 3, 4, 5]);
    const [letter] = dead;
    expect(letter?.data.toString()).toBe('poison');
    expect(letter?.attributes).toMatchObject({
      objectId: 'flights/bad.csv',
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
      CloudPubSubDeadLetterSourceSubscription: s.name,
    });
  }, 60_000);

  it('acknowledges what the handler accepted: a new subscriber on the same subscription gets nothing again', async () => {
    const s = spec();
    const first: BusMessage[] = [];
    const sub = await bus.subscribe(s, async (m) => {
      first.push(m);
    });
    await bus.publish(s.topic, Buffer.from('once'));
    await eventually(() => expect(first).toHaveLength(1));
    await sub.close();

    // A sentinel published after the first message proves the second subscriber is receiving.
    const second: BusMessage[] = [];
    const again = await bus.subscribe(s, async (m) => {
      second.push(m);
    });
    await bus.publish(s.topic, Buffer.from('sentinel'));
    await eventually(() => expect(second.map((m) => m.data.toString())).toContain('sentinel'));
    await again.close();
    expect(second.map((m) => m.data.toString())).toEqual(['sentinel']);
  }, 60_000);
});
