/** Cloud Scheduler jobs from the topology's schedules: each publishes a tick to its topic. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { Topology } from '../functions/core/topology.js';

interface SchedulesArgs {
  project: string;
  region: string;
  topology: Topology;
  topics: Record<string, gcp.pubsub.Topic>;
}

export class Schedules extends pulumi.ComponentResource {
  constructor(name: string, args: SchedulesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Schedules', name, {}, opts);
    for (const schedule of args.topology.schedules) {
      new gcp.cloudscheduler.Job(
        schedule.name,
        {
          project: args.project,
          region: args.region,
          name: schedule.name,
          schedule: schedule.cron,
          timeZone: 'Etc/UTC',
          pubsubTarget: { topicName: args.topics[schedule.topic]!.id, data: Buffer.from(schedule.data).toString('base64'), ...(schedule.attributes ? { attributes: schedule.attributes } : {}) },
        },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}
