/** Everything Cloud Monitoring holds for the deployment: log metrics, channels, SLOs, alerts, the dashboard. */
import * as pulumi from '@pulumi/pulumi';
import type { SloId } from '../../functions/core/slo.js';
import type { Topology } from '../../functions/core/topology.js';
import type { StackSettings } from '../settings.js';
import { ThresholdAlerts } from './alerts.js';
import { NotificationChannels } from './channels.js';
import { Dashboard, type DashboardInputs } from './dashboard.js';
import { LogMetrics } from './log-metrics.js';
import { ServiceLevels } from './slos.js';

interface MonitoringArgs {
  settings: StackSettings;
  topology: Topology;
  loaderSubscription: string;
  managedService: pulumi.Output<string>;
  /** The APIs and the gateway: SLO filters name the gateway's managed service. */
  dependsOn: pulumi.Resource[];
}

export class Monitoring extends pulumi.ComponentResource {
  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Monitoring', name, {}, opts);
    const { project } = args.settings;
    const child = { parent: this };
    const metrics = new LogMetrics('log-metrics', project, { ...child, dependsOn: args.dependsOn });
    const ready = [...args.dependsOn, ...Object.values(metrics.byId)];
    const channels = new NotificationChannels('channels', args.settings, child);
    const pages = [...channels.email, ...channels.chat];
    const slos = new ServiceLevels('flights-ingest', { project, managedService: args.managedService, pageChannels: pages, ticketChannels: channels.email, dependsOn: ready }, child);
    const deadLetterSubscriptions = args.topology.retained.map((r) => r.name);
    new ThresholdAlerts(
      'alerts',
      {
        project,
        inputs: args.managedService.apply((managedService) => ({ managedService, deadLetterSubscriptions, pushSubscriptions: args.topology.subscriptions.map((s) => s.name) })),
        channels: pages,
        dependsOn: ready,
      },
      child,
    );
    const sloNames = pulumi.all(Object.fromEntries(Object.entries(slos.byId).map(([id, slo]) => [id, slo.name]))).apply((n) => n as Record<SloId, string>);
    new Dashboard(
      'dashboard',
      {
        project,
        inputs: pulumi.all([args.managedService, sloNames]).apply(([managedService, names]): DashboardInputs => ({ managedService, sloNames: names, loaderSubscription: args.loaderSubscription, deadLetterSubscriptions })),
        dependsOn: ready,
      },
      child,
    );
    this.registerOutputs({});
  }
}
