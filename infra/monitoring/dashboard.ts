/**
 * The Cloud Monitoring dashboard, typed against the Dashboards API's own
 * protos (@google-cloud/monitoring-dashboards), so a misspelt field or enum
 * fails `tsc`. Durations are strings in the API's JSON, so the type maps them.
 */
import type { protos } from '@google-cloud/monitoring-dashboards';
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { ALERT_THRESHOLDS, BURN_RATE_ALERTS, SLOS, type SloId } from '../../functions/core/slo.js';
import { gateway5xx, gatewayRequests, logMetric, oldestUnacked, sloBudget, sloBurnRate, sloCompliance, undelivered } from './signals.js';

type DurationKey = 'alignmentPeriod' | 'minAlignmentPeriod' | 'timeshiftDuration';
/** A proto interface as its JSON: `google.protobuf.Duration` fields are strings such as "3600s". */
export type ProtoJson<T> = T extends (infer U)[] ? ProtoJson<U>[] : T extends object ? { [K in keyof T]: K extends DurationKey ? string | null : ProtoJson<T[K]> } : T;
export type DashboardJson = ProtoJson<protos.google.monitoring.dashboard.v1.IDashboard>;
type Widget = NonNullable<NonNullable<NonNullable<DashboardJson['mosaicLayout']>['tiles']>[number]['widget']>;
type Query = NonNullable<NonNullable<Widget['scorecard']>['timeSeriesQuery']>;
type Threshold = NonNullable<NonNullable<Widget['xyChart']>['thresholds']>[number];

export interface DashboardInputs {
  managedService: string;
  sloNames: Record<SloId, string>;
  loaderSubscription: string;
  deadLetterSubscriptions: string[];
}

const series = (filter: string, alignmentPeriod = '60s', perSeriesAligner: 'ALIGN_MEAN' | 'ALIGN_SUM' | 'ALIGN_RATE' | 'ALIGN_MAX' | 'ALIGN_PERCENTILE_95' = 'ALIGN_MEAN'): Query => ({
  timeSeriesFilter: { filter, aggregation: { alignmentPeriod, perSeriesAligner, crossSeriesReducer: perSeriesAligner === 'ALIGN_PERCENTILE_95' ? 'REDUCE_PERCENTILE_95' : 'REDUCE_SUM' } },
});
const line = (title: string, queries: Query[], thresholds: Threshold[] = []): Widget => ({
  title,
  xyChart: { dataSets: queries.map((timeSeriesQuery) => ({ timeSeriesQuery, plotType: 'LINE' })), thresholds, yAxis: { scale: 'LINEAR' } },
});
const above = (label: string, value: number): Threshold => ({ label, value, color: 'RED', direction: 'ABOVE' });
const below = (label: string, value: number): Threshold => ({ label, value, color: 'YELLOW', direction: 'BELOW' });

export function dashboard(i: DashboardInputs): DashboardJson {
  const t = ALERT_THRESHOLDS;
  const widgets: Widget[] = [
    ...SLOS.map((slo): Widget => ({
      title: `${slo.displayName}: compliance (goal ${slo.goal})`,
      scorecard: { timeSeriesQuery: { timeSeriesFilter: { filter: sloCompliance(i.sloNames[slo.id]) } }, thresholds: [below('goal', slo.goal)] },
    })),
    ...SLOS.map((slo): Widget => ({
      title: `${slo.displayName}: error budget left`,
      scorecard: { timeSeriesQuery: { timeSeriesFilter: { filter: sloBudget(i.sloNames[slo.id]) } }, thresholds: [below('budget spent', 0)], sparkChartView: { sparkChartType: 'SPARK_LINE' } },
    })),
    ...SLOS.map((slo) =>
      line(
        `${slo.displayName}: burn rate (1 h)`,
        [{ timeSeriesFilter: { filter: sloBurnRate(i.sloNames[slo.id], 3600) } }],
        BURN_RATE_ALERTS.map((a) => above(`${a.name} (${a.severity})`, a.burnRate)),
      ),
    ),
    line('Uploads per hour', [series(logMetric('uploads', { outcome: 'stored' }), '3600s', 'ALIGN_SUM')], [above('too many', t.uploadsPerHour.max), below('too few', t.uploadsPerHour.min)]),
    {
      title: 'Gateway 5xx ratio',
      xyChart: {
        dataSets: [
          {
            plotType: 'LINE',
            timeSeriesQuery: {
              timeSeriesFilterRatio: {
                numerator: { filter: gateway5xx(i.managedService), aggregation: { alignmentPeriod: '300s', perSeriesAligner: 'ALIGN_RATE', crossSeriesReducer: 'REDUCE_SUM' } },
                denominator: { filter: gatewayRequests(i.managedService), aggregation: { alignmentPeriod: '300s', perSeriesAligner: 'ALIGN_RATE', crossSeriesReducer: 'REDUCE_SUM' } },
              },
            },
          },
        ],
        thresholds: [above('alert', t.gateway5xxRatio)],
      },
    },
    line('Freshness: upload → queryable, p95 (s)', [series(logMetric('upload_to_loaded_seconds'), '300s', 'ALIGN_PERCENTILE_95')], [above('SLO threshold', 120)]),
    line('Loader lag: oldest unacked notification (s)', [series(oldestUnacked([i.loaderSubscription]), '60s', 'ALIGN_MAX')], [above('alert', t.oldestUnackedSeconds)]),
    line(
      `Loader flushes held by BigQuery, and all, per ${t.loadsHeld.windowSeconds / 60} min`,
      [series(logMetric('loader_flushes', { outcome: 'held' }), `${t.loadsHeld.windowSeconds}s`, 'ALIGN_SUM'), series(logMetric('loader_flushes'), `${t.loadsHeld.windowSeconds}s`, 'ALIGN_SUM')],
      [above('alert, when every flush is held', t.loadsHeld.minHeld - 1)],
    ),
    line('Dead-letter backlog', [series(undelivered(i.deadLetterSubscriptions), '60s', 'ALIGN_MAX')], [above('any', t.deadLetterBacklog)]),
  ];
  const columns = 12;
  const width = 4;
  const height = 4;
  return {
    displayName: 'flights-ingest',
    mosaicLayout: {
      columns,
      tiles: widgets.map((widget, n) => ({ widget, width, height, xPos: (n * width) % columns, yPos: Math.floor((n * width) / columns) * height })),
    },
  };
}

export class Dashboard extends pulumi.ComponentResource {
  constructor(name: string, args: { project: string; inputs: pulumi.Input<DashboardInputs>; dependsOn: pulumi.Resource[] }, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Dashboard', name, {}, opts);
    new gcp.monitoring.Dashboard(name, { project: args.project, dashboardJson: pulumi.output(args.inputs).apply((i) => JSON.stringify(dashboard(i))) }, { parent: this, dependsOn: args.dependsOn });
    this.registerOutputs({});
  }
}
