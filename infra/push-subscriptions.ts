/**
 * The direct Pub/Sub trigger: one push subscription per topology subscription,
 * to its function's URL, authenticated by an OIDC token of an account that may
 * invoke that function and nothing else. The path names the topic because the
 * functions-framework builds the CloudEvent's source from it.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { deadLetters, pushEndpoint, type FunctionSubscription, type Topology } from '../functions/core/topology.js';
import { durationSeconds } from './durations.js';
import { invoker, kebab, type DeployedFunction } from './functions.js';
import { pubsubServiceAgent } from './messaging.js';
import type { StackSettings } from './settings.js';

export const pushServiceAccountId = (sub: FunctionSubscription): string => `push-${kebab(sub.target)}`;

interface PushArgs {
  settings: StackSettings;
  projectNumber: pulumi.Input<string>;
  topology: Topology;
  topics: Record<string, gcp.pubsub.Topic>;
  functions: Record<string, DeployedFunction>;
}

export class PushSubscriptions extends pulumi.ComponentResource {
  readonly byName: Record<string, gcp.pubsub.Subscription> = {};

  constructor(name: string, args: PushArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:PushSubscriptions', name, {}, opts);
    for (const sub of args.topology.subscriptions) this.byName[sub.name] = this.subscribe(sub, args);
    this.registerOutputs({});
  }

  private subscribe(sub: FunctionSubscription, args: PushArgs): gcp.pubsub.Subscription {
    const { project } = args.settings;
    const target = args.functions[sub.target];
    if (!target) throw new Error(`subscription ${sub.name} invokes ${sub.target}, which is not deployed`);
    const child = { parent: this };
    const account = new gcp.serviceaccount.Account(
      pushServiceAccountId(sub),
      { project, accountId: pushServiceAccountId(sub), displayName: `Pub/Sub push to ${sub.target}` },
      child,
    );
    const invokes = invoker(`${sub.name}-invoker`, target, pulumi.interpolate`serviceAccount:${account.email}`, args.settings, child);
    const topic = args.topics[sub.topic]!;
    const subscription = new gcp.pubsub.Subscription(
      sub.name,
      {
        project,
        name: sub.name,
        topic: topic.name,
        filter: sub.filter ?? '',
        ackDeadlineSeconds: sub.ackDeadlineSeconds,
        retryPolicy: { minimumBackoff: durationSeconds(sub.minBackoffMs), maximumBackoff: durationSeconds(sub.maxBackoffMs) },
        deadLetterPolicy: deadLetters(sub)
          ? { deadLetterTopic: args.topics[sub.deadLetterTopic]!.id, maxDeliveryAttempts: sub.maxDeliveryAttempts }
          : undefined,
        expirationPolicy: { ttl: '' },
        pushConfig: {
          pushEndpoint: target.url.apply((url) => pushEndpoint(url, project, sub.topic)),
          // Cloud Run checks the audience against the service URL, not the URL with the path.
          oidcToken: { serviceAccountEmail: account.email, audience: target.url },
        },
      },
      { parent: this, dependsOn: [invokes] },
    );
    if (deadLetters(sub)) {
      // Pub/Sub acknowledges on the source subscription what it forwarded to the dead-letter topic.
      new gcp.pubsub.SubscriptionIAMMember(
        `${sub.name}-pubsub-agent-subscriber`,
        { project, subscription: subscription.name, role: 'roles/pubsub.subscriber', member: pubsubServiceAgent(args.projectNumber) },
        child,
      );
    }
    return subscription;
  }
}
