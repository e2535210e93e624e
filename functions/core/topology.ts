/**
 * The event wiring of the whole system, described once: which topics exist,
 * which bucket prefixes notify which topic, and which subscription (with its
 * filter, dead-letter topic, delivery attempts, backoff and ack deadline)
 * invokes which function. The embedded bus (functions/local/pipeline.ts),
 * `npm run start:emulators` and the Pulumi program (infra/) all build from
 * this, so the three cannot disagree.
 */
import { INCOMING_PREFIX } from '../ingest/store-upload.js';
import type { Config } from './config.js';
import { LANDING_PREFIX } from './landing.js';
import { RECONCILE_TASK } from '../loader/reconcile.js';
import { objectPrefixFilter } from './notification.js';
import type { SubscriptionSpec } from './ports.js';

/** The functions `functions/index.ts` registers with the functions-framework. */
export const HTTP_FUNCTIONS = ['upload', 'uploads', 'getdata', 'exports'] as const;
export const EVENT_FUNCTIONS = ['validateUpload', 'loadFlights', 'flushLoads', 'deadLetter', 'runExport'] as const;
export const FUNCTIONS = [...HTTP_FUNCTIONS, ...EVENT_FUNCTIONS] as const;
export type HttpFunctionName = (typeof HTTP_FUNCTIONS)[number];
export type EventFunctionName = (typeof EVENT_FUNCTIONS)[number];
export type FunctionName = (typeof FUNCTIONS)[number];

/**
 * Event-driven Cloud Run functions stop at 540 s; a push subscription's ack
 * deadline is the time Pub/Sub waits for the push response, so it must exceed
 * the function's run (its maximum is 600 s).
 */
export const EVENT_FUNCTION_TIMEOUT_SECONDS = 540;
export const PUSH_ACK_DEADLINE_SECONDS = 600;

/** A subscription that delivers to one function (a push subscription in the cloud and on the emulator). */
export interface FunctionSubscription extends SubscriptionSpec {
  /** The function it invokes. */
  target: EventFunctionName;
  ackDeadlineSeconds: number;
}

/** A bucket notification: OBJECT_FINALIZE events of objects under `prefix`, JSON_API_V1 payload, to `topic`. */
export interface BucketNotification {
  prefix: string;
  topic: string;
}

/** A timer that publishes `data` to `topic` (Cloud Scheduler in the cloud). */
export interface Schedule {
  name: string;
  topic: string;
  /**
   * The message body. Never empty: the functions-framework turns a push request into a CloudEvent
   * only when its message has data (pubsub_middleware's isRawPubSubRequestBody); a tick with
   * attributes alone would reach the function without them.
   */
  data: string;
  /** Cron, as Cloud Scheduler reads it. */
  cron: string;
  /** The same period for the laptop, where ticks are faster than a minute. */
  localEveryMs: number;
  /** Attributes of the published message, telling one schedule's ticks from another's on a shared topic. */
  attributes?: Record<string, string>;
}

export interface Topology {
  topics: string[];
  notifications: BucketNotification[];
  subscriptions: FunctionSubscription[];
  /** Pull subscriptions that only keep messages (nothing consumes them automatically): the dead letters. */
  retained: SubscriptionSpec[];
  schedules: Schedule[];
}

type DeliveryPolicy = Pick<SubscriptionSpec, 'maxDeliveryAttempts' | 'deadLetterTopic' | 'minBackoffMs' | 'maxBackoffMs'>;

function deliveryPolicy(config: Config): DeliveryPolicy {
  return {
    maxDeliveryAttempts: config.maxDeliveryAttempts,
    deadLetterTopic: config.deadLetterTopic,
    minBackoffMs: config.minBackoffMs,
    maxBackoffMs: config.maxBackoffMs,
  };
}

/** Retried with the same backoff, never dead-lettered (the buses read an empty deadLetterTopic as none). */
function retryForever(config: Config): DeliveryPolicy {
  return { ...deliveryPolicy(config), maxDeliveryAttempts: Number.MAX_SAFE_INTEGER, deadLetterTopic: '' };
}

/** What every schedule publishes: a body, which a tick needs (Schedule.data), with nothing in it to read. */
const TICK = '{"tick":true}';

/** Whether a subscription dead-letters at all. */
export const deadLetters = (spec: SubscriptionSpec): boolean => spec.deadLetterTopic !== '';

export function topology(config: Config): Topology {
  const flushTopic = config.flushTopic;
  const sub = (target: EventFunctionName, spec: Omit<SubscriptionSpec, keyof DeliveryPolicy>, policy = deliveryPolicy(config)): FunctionSubscription => ({
    ...policy,
    ...spec,
    target,
    ackDeadlineSeconds: PUSH_ACK_DEADLINE_SECONDS,
  });
  return {
    topics: [config.notificationTopic, config.deadLetterTopic, config.exports.topic, flushTopic],
    // One notification per prefix, both to one topic: each subscription's filter keeps its own prefix.
    notifications: [INCOMING_PREFIX, LANDING_PREFIX].map((prefix) => ({ prefix, topic: config.notificationTopic })),
    subscriptions: [
      // Filtered so the validator's landing/ notifications never cost the loader an invocation, and the reverse.
      sub('loadFlights', { name: config.loaderSubscription, topic: config.notificationTopic, filter: objectPrefixFilter(INCOMING_PREFIX) }),
      sub('validateUpload', { name: config.signedUploads.validatorSubscription, topic: config.notificationTopic, filter: objectPrefixFilter(LANDING_PREFIX) }),
      sub('runExport', { name: config.exports.subscription, topic: config.exports.topic }),
      // A missed tick is harmless (the next one lists what is pending), so ticks are never dead-lettered.
      sub('flushLoads', { name: `${flushTopic}-push`, topic: flushTopic }, retryForever(config)),
      // Records each dead letter (quarantine, upload record); a dead letter is never dead-lettered further.
      sub('deadLetter', { name: `${config.deadLetterTopic}-recorder`, topic: config.deadLetterTopic }, retryForever(config)),
    ],
    // What the recorder sees is also kept here, for an operator to inspect and `npm run dlq:redrive`.
    retained: [{ name: `${config.deadLetterTopic}-retained`, topic: config.deadLetterTopic, ...retryForever(config) }],
    schedules: [
      { name: `${flushTopic}-every-minute`, topic: flushTopic, data: TICK, cron: '* * * * *', localEveryMs: config.flushTickMs },
      // The reconciler (loader/reconcile.ts) rides the flush topic: flushLoads reconciles on these ticks, then flushes.
      // npm start runs it at start-up instead (local/recovery.ts); start:emulators does both.
      { name: `${flushTopic}-reconcile-hourly`, topic: flushTopic, data: TICK, cron: '17 * * * *', localEveryMs: config.reconcileTickMs, attributes: { task: RECONCILE_TASK } },
    ],
  };
}

/**
 * The path of a push endpoint, `/projects/P/topics/T`: the functions-framework builds the CloudEvent's
 * `source` from it (pubsub_middleware's extractPubSubTopic); the function serves any path.
 */
export const pushPath = (project: string, topic: string): string => `/projects/${project}/topics/${topic}`;

/** Where a push subscription delivers to a function served at `functionUrl`. */
export const pushEndpoint = (functionUrl: string, project: string, topic: string): string => `${functionUrl.replace(/\/+$/, '')}${pushPath(project, topic)}`;

/** The subscription that invokes `target`. */
export function subscriptionFor(config: Config, target: EventFunctionName): FunctionSubscription {
  const found = topology(config).subscriptions.find((s) => s.target === target);
  if (!found) throw new Error(`no subscription invokes ${target}`);
  return found;
}
