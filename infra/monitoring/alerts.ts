/** The threshold alerts of functions/core/slo.ts ALERT_THRESHOLDS. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { ALERT_THRESHOLDS } from '../../functions/core/slo.js';
import { FUNCTIONS } from '../../functions/core/topology.js';
import { functionErrors, functionRequests, gateway5xx, gatewayRequests, logMetric, oldestUnacked, undelivered } from './signals.js';

type Condition = gcp.types.input.monitoring.AlertPolicyCondition;
type Aggregation = gcp.types.input.monitoring.AlertPolicyConditionConditionThresholdAggregation;

const sum = (periodSeconds: number, aligner = 'ALIGN_SUM'): Aggregation[] => [{ alignmentPeriod: `${periodSeconds}s`, perSeriesAligner: aligner, crossSeriesReducer: 'REDUCE_SUM' }];
const max = (periodSeconds: number): Aggregation[] => [{ alignmentPeriod: `${periodSeconds}s`, perSeriesAligner: 'ALIGN_MAX', crossSeriesReducer: 'REDUCE_MAX' }];

type Extra = Partial<gcp.types.input.monitoring.AlertPolicyConditionConditionThreshold>;

function when(comparison: 'COMPARISON_GT' | 'COMPARISON_LT', displayName: string, filter: string, threshold: number, aggregations: Aggregation[], extra: Extra = {}): Condition {
  return { displayName, conditionThreshold: { filter, comparison, thresholdValue: threshold, duration: '0s', aggregations, ...extra } };
}
const above = (displayName: string, filter: string, threshold: number, aggregations: Aggregation[], extra: Extra = {}): Condition =>
  when('COMPARISON_GT', displayName, filter, threshold, aggregations, extra);

/** A ratio of two request counts over 5 minutes. */
const ratio = (displayName: string, bad: string, total: string, threshold: number): Condition =>
  above(displayName, bad, threshold, sum(300, 'ALIGN_RATE'), { denominatorFilter: total, denominatorAggregations: sum(300, 'ALIGN_RATE') });

export interface AlertSpec {
  id: string;
  displayName: string;
  conditions: Condition[];
  combiner: 'OR' | 'AND';
}

export interface AlertInputs {
  managedService: string;
  deadLetterSubscriptions: string[];
  pushSubscriptions: string[];
}

export function thresholdAlerts(i: AlertInputs): AlertSpec[] {
  const t = ALERT_THRESHOLDS;
  const stored = logMetric('uploads', { outcome: 'stored' });
  return [
    {
      id: 'uploads-per-hour',
      displayName: `Uploads per hour outside ${t.uploadsPerHour.min}–${t.uploadsPerHour.max}`,
      combiner: 'OR',
      conditions: [
        above(`more than ${t.uploadsPerHour.max} uploads in an hour`, stored, t.uploadsPerHour.max, sum(3600)),
        when('COMPARISON_LT', `fewer than ${t.uploadsPerHour.min} uploads in an hour`, stored, t.uploadsPerHour.min, sum(3600)),
      ],
    },
    { id: 'gateway-5xx', displayName: `Gateway 5xx above ${t.gateway5xxRatio * 100}%`, combiner: 'OR', conditions: [ratio('5xx / all gateway responses', gateway5xx(i.managedService), gatewayRequests(i.managedService), t.gateway5xxRatio)] },
    { id: 'function-errors', displayName: `Function error ratio above ${t.functionErrorRatio * 100}%`, combiner: 'OR', conditions: [ratio('5xx / all function requests', functionErrors(FUNCTIONS), functionRequests(FUNCTIONS), t.functionErrorRatio)] },
    { id: 'loader-failures', displayName: 'Files failed to load (quarantined)', combiner: 'OR', conditions: [above('quarantined files in an hour', logMetric('loader_failures'), t.loaderFailuresPerHour, sum(3600))] },
    { id: 'export-failures', displayName: 'Exports failed', combiner: 'OR', conditions: [above('failed exports in an hour', logMetric('export_failures'), t.exportFailuresPerHour, sum(3600))] },
    { id: 'dead-letter-backlog', displayName: 'Dead letters waiting for an operator', combiner: 'OR', conditions: [above('undelivered dead letters', undelivered(i.deadLetterSubscriptions), t.deadLetterBacklog, max(300))] },
    { id: 'oldest-unacked', displayName: `A function subscription has a message older than ${t.oldestUnackedSeconds / 60} min`, combiner: 'OR', conditions: [above('oldest unacked message age (s)', oldestUnacked(i.pushSubscriptions), t.oldestUnackedSeconds, max(60))] },
  ];
}

interface AlertsArgs {
  project: string;
  inputs: pulumi.Input<AlertInputs>;
  channels: pulumi.Input<string>[];
  /** Log-based metrics must exist before a condition may name them. */
  dependsOn: pulumi.Resource[];
}

export class ThresholdAlerts extends pulumi.ComponentResource {
  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:ThresholdAlerts', name, {}, opts);
    // The specs' shape is fixed; only the managed service name arrives later.
    const ids = thresholdAlerts({ managedService: '', deadLetterSubscriptions: [], pushSubscriptions: [] });
    for (const { id } of ids) {
      const spec = pulumi.output(args.inputs).apply((i) => thresholdAlerts(i).find((a) => a.id === id)!);
      new gcp.monitoring.AlertPolicy(
        id,
        {
          project: args.project,
          displayName: spec.displayName,
          combiner: spec.combiner,
          conditions: spec.conditions,
          severity: 'ERROR',
          notificationChannels: args.channels,
        },
        { parent: this, dependsOn: args.dependsOn },
      );
    }
    this.registerOutputs({});
  }
}
