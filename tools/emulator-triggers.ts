/**
 * The triggers of the event functions on the Pub/Sub emulator, built from
 * core/topology.ts as infra/ builds the cloud's: what Pub/Sub push and Cloud
 * Scheduler do for the deployed functions, for functions served by
 * functions-framework processes on this machine.
 * - `createTriggers`: each event function's push subscription to its process
 *   (the emulator pushes to loopback URLs), with its filter, dead-letter
 *   policy, backoff and ack deadline, and the retained pull subscriptions;
 * - `runSchedules`: publishes each schedule's message to its topic every
 *   `localEveryMs`, so a tick reaches its function through its push
 *   subscription like any other message.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PubSubBus } from '../functions/adapters/pubsub/bus.js';
import { pushEndpoint, type EventFunctionName, type Schedule, type Topology } from '../functions/core/topology.js';

export async function createTriggers(bus: PubSubBus, wiring: Topology, project: string, urlOf: (target: EventFunctionName) => string): Promise<void> {
  for (const spec of wiring.subscriptions) await bus.createPushSubscription(spec, pushEndpoint(urlOf(spec.target), project, spec.topic));
  for (const spec of wiring.retained) await bus.createSubscription(spec);
}

/** Runs until the signal aborts; a tick that cannot be published is reported and the next one comes on time. */
export async function runSchedules(bus: PubSubBus, schedules: Schedule[], signal: AbortSignal, onError: (e: unknown) => void): Promise<void> {
  await Promise.all(
    schedules.map(async ({ topic, data, attributes, localEveryMs }) => {
      while (!signal.aborted) {
        await bus.publish(topic, Buffer.from(data), attributes).catch(onError);
        await sleep(localEveryMs, undefined, { signal }).catch(() => undefined);
      }
    }),
  );
}
