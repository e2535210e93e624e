/**
 * The SLOs of functions/core/slo.ts as Cloud Monitoring SLOs on one custom
 * service, each with the SRE workbook's multi-window, multi-burn-rate alerts.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { BURN_RATE_ALERTS, SLOS, type BurnRateAlert, type SloDefinition, type SloId } from '../../functions/core/slo.js';
import { gateway5xx, gatewayRequests, logMetric, sloBurnRate, uploadLatency } from './signals.js';

export function requestBasedSli(slo: SloDefinition, managedService: string): gcp.types.input.monitoring.SloRequestBasedSli {
  switch (slo.sli.kind) {
    case 'latency':
      return { distributionCut: { distributionFilter: uploadLatency(), range: { max: slo.sli.thresholdMs } } };
    case 'availability':
      return { goodTotalRatio: { badServiceFilter: gateway5xx(managedService), totalServiceFilter: gatewayRequests(managedService) } };
    case 'freshness':
      return { distributionCut: { distributionFilter: logMetric('upload_to_loaded_seconds'), range: { max: slo.sli.thresholdSeconds } } };
  }
}

export const burnRateAlertName = (slo: SloId, alert: BurnRateAlert): string => `slo-${slo}-burn-${alert.name}`;

interface SlosArgs {
  project: string;
  managedService: pulumi.Input<string>;
  /** Channels for pages, and for tickets. */
  pageChannels: pulumi.Input<string>[];
  ticketChannels: pulumi.Input<string>[];
  dependsOn: pulumi.Resource[];
}

export class ServiceLevels extends pulumi.ComponentResource {
  readonly byId = {} as Record<SloId, gcp.monitoring.Slo>;

  constructor(name: string, args: SlosArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:ServiceLevels', name, {}, opts);
    const child = { parent: this };
    const service = new gcp.monitoring.CustomService(name, { project: args.project, serviceId: name, displayName: 'flights-ingest' }, child);
    for (const slo of SLOS) {
      const created = new gcp.monitoring.Slo(
        slo.id,
        {
          project: args.project,
          service: service.serviceId,
          sloId: slo.id,
          displayName: slo.displayName,
          goal: slo.goal,
          rollingPeriodDays: slo.rollingPeriodDays,
          requestBasedSli: pulumi.output(args.managedService).apply((m) => requestBasedSli(slo, m)),
        },
        { parent: this, dependsOn: args.dependsOn },
      );
      this.byId[slo.id] = created;
      for (const alert of BURN_RATE_ALERTS) {
        const window = (seconds: number, label: string) => ({
          displayName: `${label} window (${seconds / 60} min) burn rate above ${alert.burnRate}`,
          conditionThreshold: { filter: created.name.apply((n) => sloBurnRate(n, seconds)), comparison: 'COMPARISON_GT', thresholdValue: alert.burnRate, duration: '0s' },
        });
        new gcp.monitoring.AlertPolicy(
          burnRateAlertName(slo.id, alert),
          {
            project: args.project,
            displayName: `${slo.displayName}: burning error budget ${alert.burnRate}× (${alert.severity})`,
            // Both windows: the long one proves it matters, the short one that it is still happening.
            combiner: 'AND',
            conditions: [window(alert.longWindowSeconds, 'long'), window(alert.shortWindowSeconds, 'short')],
            severity: alert.severity === 'page' ? 'CRITICAL' : 'WARNING',
            notificationChannels: alert.severity === 'page' ? args.pageChannels : args.ticketChannels,
            documentation: { mimeType: 'text/markdown', content: `SLO **${slo.displayName}** (goal ${slo.goal}, ${slo.rollingPeriodDays} days) is spending its error budget at ${alert.burnRate}× the sustainable rate. See docs/deploy.md, "Reading the dashboard".` },
          },
          child,
        );
      }
    }
    this.registerOutputs({});
  }
}
