/**
 * One wiring, three builders: the subscriptions the embedded bus gets from
 * functions/runtime.ts and the ones `npm run start:emulators` makes on the
 * real Pub/Sub emulator (tools/emulator-triggers.ts) must be what
 * functions/core/topology.ts describes, field by field.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PubSubBus } from '../../functions/adapters/pubsub/bus.js';
import { loadConfig, type Config } from '../../functions/core/config.js';
import type { SubscriptionSpec } from '../../functions/core/ports.js';
import { deadLetters, EVENT_FUNCTIONS, pushEndpoint, topology, type EventFunctionName, type FunctionSubscription } from '../../functions/core/topology.js';
import { createRuntime } from '../../functions/runtime.js';
import { createTriggers } from '../../tools/emulator-triggers.js';
import { profileEnv, quietLogger, tempDir } from '../support/pipeline.js';

const PROJECT = 'demo';
const topicName = (topic: string) => `projects/${PROJECT}/topics/${topic}`;

/** What a subscription does, in one shape for every builder; pull subscriptions have no push endpoint or ack deadline to compare. */
interface Wiring {
  name: string;
  topic: string;
  filter: string;
  deadLetter: { topic: string; maxDeliveryAttempts: number } | null;
  backoffMs: [number, number];
  push?: { endpoint: string; ackDeadlineSeconds: number };
}

function expected(spec: SubscriptionSpec | FunctionSubscription, urlOf?: (target: EventFunctionName) => string): Wiring {
  return {
    name: spec.name,
    topic: topicName(spec.topic),
    filter: spec.filter ?? '',
    deadLetter: deadLetters(spec) ? { topic: topicName(spec.deadLetterTopic), maxDeliveryAttempts: spec.maxDeliveryAttempts } : null,
    backoffMs: [spec.minBackoffMs, spec.maxBackoffMs],
    ...('target' in spec && urlOf ? { push: { endpoint: pushEndpoint(urlOf(spec.target), PROJECT, spec.topic), ackDeadlineSeconds: spec.ackDeadlineSeconds } } : {}),
  };
}

/** A protobuf Duration (seconds may arrive as a string or a Long) in milliseconds. */
const ms = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(d?.seconds ?? 0) * 1000 + (d?.nanos ?? 0) / 1e6;

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

describe('the topology, the embedded bus and the emulator agree', () => {
  let config: Config;
  beforeAll(() => {
    config = loadConfig({ ...profileEnv('emulator'), DATA_DIR: 'unused', MIN_BACKOFF_MS: '1500', MAX_BACKOFF_MS: '45000' });
  });

  it('every event function is invoked by exactly one subscription', () => {
    expect(topology(config).subscriptions.map((s) => s.target).sort()).toEqual([...EVENT_FUNCTIONS].sort());
  });

  it('the embedded bus gets every subscription of the topology, with its filter and policies', async () => {
    const dataDir = await tempDir();
    const embedded = loadConfig({ DATA_DIR: dataDir, MIN_BACKOFF_MS: '1500', MAX_BACKOFF_MS: '45000' });
    const rt = await createRuntime(embedded, quietLogger());
    await rt.close();
    // The durable bus keeps each subscription's spec as a file, as Pub/Sub keeps it server-side.
    const dir = path.join(dataDir, 'bus', 'subscriptions');
    const made = await Promise.all((await fs.readdir(dir)).map(async (f) => JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as SubscriptionSpec));
    const wiring = topology(embedded);
    expect(made.map((s) => expected(s)).sort(byName)).toEqual([...wiring.subscriptions, ...wiring.retained].map((s) => expected(s)).sort(byName));
  });

  describe('on the Pub/Sub emulator', () => {
    const options = { projectId: PROJECT, apiEndpoint: inject('pubsubEmulatorHost'), emulatorMode: true, universeDomain: 'googleapis.com' };
    let admin: PubSub;
    let bus: PubSubBus;
    beforeAll(() => {
      admin = new PubSub(options);
      bus = new PubSubBus(options);
    });
    afterAll(async () => {
      await bus?.close();
      await admin?.close();
    });

    it('start:emulators makes a push subscription per event function, to its URL on the topic path, and the retained dead-letter pull', async () => {
      // Nothing is published here, so nothing is pushed to these ports.
      const urlOf = (target: EventFunctionName) => `http://127.0.0.1:${9000 + EVENT_FUNCTIONS.indexOf(target)}`;
      const wiring = topology(config);
      await createTriggers(bus, wiring, PROJECT, urlOf);
      // A runtime starting afterwards creates the same subscriptions as pull ones: that must leave them pushing.
      for (const spec of [...wiring.subscriptions, ...wiring.retained]) await bus.createSubscription(spec);

      const names = new Set([...wiring.subscriptions, ...wiring.retained].map((s) => s.name));
      const [all] = await admin.getSubscriptions();
      const listed = await Promise.all(all.filter((s) => names.has(s.name.split('/').pop()!)).map(async (s) => (await s.getMetadata())[0]));
      const made: Wiring[] = listed.map((m) => ({
        name: m.name!.split('/').pop()!,
        topic: m.topic as string,
        filter: m.filter ?? '',
        deadLetter: m.deadLetterPolicy ? { topic: m.deadLetterPolicy.deadLetterTopic!, maxDeliveryAttempts: m.deadLetterPolicy.maxDeliveryAttempts! } : null,
        backoffMs: [ms(m.retryPolicy?.minimumBackoff), ms(m.retryPolicy?.maximumBackoff)],
        ...(m.pushConfig?.pushEndpoint ? { push: { endpoint: m.pushConfig.pushEndpoint, ackDeadlineSeconds: m.ackDeadlineSeconds! } } : {}),
      }));
      expect(made.sort(byName)).toEqual([...wiring.subscriptions.map((s) => expected(s, urlOf)), ...wiring.retained.map((s) => expected(s))].sort(byName));
      // Spelled out once: the path the functions-framework reads the topic from.
      expect(made.find((s) => s.name === config.loaderSubscription)?.push?.endpoint).toBe(`http://127.0.0.1:9001/projects/demo/topics/${config.notificationTopic}`);
    });
  });
});
