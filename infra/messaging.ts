/**
 * Pub/Sub topics from the topology, the bucket's notifications into them, and
 * the service agents' grants that `gcloud` would make implicitly and an API
 * client does not: without them GCS cannot publish and nothing is ever
 * dead-lettered.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { Topology } from '../functions/core/topology.js';
import { durationSeconds } from './durations.js';

export const pubsubServiceAgent = (projectNumber: pulumi.Input<string>): pulumi.Output<string> =>
  pulumi.interpolate`serviceAccount:service-${projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;

/** How long the dead-letter topic's pull subscription keeps a message an operator has not looked at. */
export const DEAD_LETTER_RETENTION_SECONDS = 7 * 86_400;

interface TopicsArgs {
  project: string;
  projectNumber: pulumi.Input<string>;
  topology: Topology;
  deadLetterTopic: string;
}

export class Topics extends pulumi.ComponentResource {
  readonly byName: Record<string, gcp.pubsub.Topic>;

  constructor(name: string, args: TopicsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Topics', name, {}, opts);
    const child = { parent: this };
    this.byName = Object.fromEntries(args.topology.topics.map((t) => [t, new gcp.pubsub.Topic(t, { project: args.project, name: t }, child)]));
    const deadLetter = this.byName[args.deadLetterTopic];
    if (!deadLetter) throw new Error(`the topology has no dead-letter topic ${args.deadLetterTopic}`);
    new gcp.pubsub.TopicIAMMember(
      `${args.deadLetterTopic}-pubsub-agent-publisher`,
      { project: args.project, topic: deadLetter.name, role: 'roles/pubsub.publisher', member: pubsubServiceAgent(args.projectNumber) },
      child,
    );
    for (const retained of args.topology.retained) {
      new gcp.pubsub.Subscription(
        retained.name,
        {
          project: args.project,
          name: retained.name,
          topic: this.byName[retained.topic]!.name,
          messageRetentionDuration: durationSeconds(DEAD_LETTER_RETENTION_SECONDS * 1000),
          retainAckedMessages: false,
          // The default expires a subscription after 31 idle days, dropping what it holds.
          expirationPolicy: { ttl: '' },
        },
        child,
      );
    }
    this.registerOutputs({});
  }
}

interface NotificationsArgs {
  project: string;
  bucket: gcp.storage.Bucket;
  topology: Topology;
  topics: Record<string, gcp.pubsub.Topic>;
}

export class BucketNotifications extends pulumi.ComponentResource {
  constructor(name: string, args: NotificationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:BucketNotifications', name, {}, opts);
    const agent = gcp.storage.getProjectServiceAccountOutput({ project: args.project }, { parent: this });
    const grants = [...new Set(args.topology.notifications.map((n) => n.topic))].map(
      (topic) =>
        new gcp.pubsub.TopicIAMMember(
          `${topic}-gcs-agent-publisher`,
          { project: args.project, topic: args.topics[topic]!.name, role: 'roles/pubsub.publisher', member: pulumi.interpolate`serviceAccount:${agent.emailAddress}` },
          { parent: this },
        ),
    );
    for (const { prefix, topic } of args.topology.notifications) {
      new gcp.storage.Notification(
        `${name}-${prefix.replace(/\/$/, '')}`,
        {
          bucket: args.bucket.name,
          topic: args.topics[topic]!.id,
          payloadFormat: 'JSON_API_V1',
          eventTypes: ['OBJECT_FINALIZE'],
          objectNamePrefix: prefix,
        },
        // GCS checks it may publish when the notification is created.
        { parent: this, dependsOn: grants },
      );
    }
    this.registerOutputs({});
  }
}
