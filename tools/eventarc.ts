/**
 * What Eventarc and Cloud Scheduler do for the deployed functions, for
 * functions served by functions-framework processes on this machine:
 * - `pushToFunction` turns a Pub/Sub message into the binary-mode CloudEvent
 *   (`google.cloud.pubsub.topic.v1.messagePublished`) Eventarc POSTs to a
 *   Cloud Run service, and fails when the function does, so the subscriber
 *   nacks it and the subscription's retry and dead-letter policies apply;
 * - `scheduleFlushes` POSTs the event a Cloud Scheduler job publishing to
 *   Pub/Sub would produce, every `everyMs`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { toCloudEvent, type PubSubCloudEvent } from '../functions/core/notification.js';
import type { BusMessage, MessageHandler, SubscriptionSpec } from '../functions/core/ports.js';

/** The topic a Cloud Scheduler job for `flushLoads` would publish to; here only the events' source names it. */
const SCHEDULE_TOPIC = 'flights-flush-schedule';

/** Binary content mode: the attributes travel as `ce-` headers and the body is the event's data alone. */
async function postCloudEvent(url: string, event: PubSubCloudEvent): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'ce-specversion': event.specversion,
      'ce-id': event.id,
      'ce-source': event.source,
      'ce-type': event.type,
      'ce-time': event.time,
      'content-type': event.datacontenttype,
    },
    body: JSON.stringify(event.data),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 500)}`);
}

export function pushToFunction(url: string, project: string, spec: SubscriptionSpec): MessageHandler {
  return (message) => postCloudEvent(url, toCloudEvent(message, project, spec.topic, spec.name));
}

/** Runs until the signal aborts; a tick waits for the previous one, as a job with no overlap would. */
export async function scheduleFlushes(url: string, project: string, everyMs: number, signal: AbortSignal, onError: (e: unknown) => void): Promise<void> {
  for (let tick = 1; !signal.aborted; tick++) {
    const message: BusMessage = { id: `schedule-${tick}`, data: Buffer.alloc(0), attributes: {}, publishTime: new Date().toISOString(), deliveryAttempt: 1 };
    await postCloudEvent(url, toCloudEvent(message, project, SCHEDULE_TOPIC, `${SCHEDULE_TOPIC}-push`)).catch(onError);
    await sleep(everyMs, undefined, { signal }).catch(() => undefined);
  }
}
