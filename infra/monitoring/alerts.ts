/** The threshold alerts of functions/core/slo.ts ALERT_THRESHOLDS. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { ALERT_THRESHOLDS } from '../../functions/core/slo.js';
import { FUNCTIONS } from '../../functions/core/topology.js';
import { PENDING_PREFIX } from '../../functions/loader/pending.js';
import type { FlushOutcome } from '../../functions/ops/events.js';
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
  /** Markdown sent with the notification: what the alert means and what to do. */
  documentation?: string;
}

const LOADS_HELD_DOCUMENTATION = `Every loader flush of the last ${ALERT_THRESHOLDS.loadsHeld.windowSeconds / 60} minutes left files pending because of BigQuery: either it was unavailable or refused jobs for the project (5xx, \`rateLimitExceeded\`, \`quotaExceeded\`: the flush stopped), or it failed a load job itself (\`backendError\`, \`internalError\`: that batch was held back and split, the other files loaded).

Nothing is lost and nothing was quarantined: uploads are still accepted, and every file waits in \`incoming/\` with its marker under \`${PENDING_PREFIX}\`, charged no attempt. Its rows are not queryable yet, so freshness degrades for as long as this lasts.

What to do:
- Check BigQuery's status (https://status.cloud.google.com) and the project's BigQuery quotas (table modifications per table per day, jobs per day).
- Read the \`flush stopped: the warehouse is unavailable\` lines of the load-flights and flush-loads services in Cloud Logging: their \`err\` names BigQuery's reason and the job.
- Read the \`file held: BigQuery failed its job itself\` lines: a file named there again and again (\`object\`, \`uploadId\`, \`held\` counts the jobs that failed with it, \`nextAttemptAt\` when it is tried next: its wait doubles from 1 to at most 30 minutes) is one BigQuery fails every time while the others load; its upload's reason says \`waiting on BigQuery\` and the next attempt's time.
- If BigQuery is healthy and the same job keeps failing with \`internalError\`, open a BigQuery support case with that job id.

\`npm run dlq:redrive\` is not the fix: nothing was dead-lettered. Once BigQuery accepts jobs again, the next flush (at most a minute later) loads every pending file once, and this alert closes; a held file is loaded at its next attempt (at most 30 minutes later).`;

export interface AlertInputs {
  managedService: string;
  deadLetterSubscriptions: string[];
  pushSubscriptions: string[];
}

export function thresholdAlerts(i: AlertInputs): AlertSpec[] {
  const t = ALERT_THRESHOLDS;
  const stored = logMetric('uploads', { outcome: 'stored' });
  const held = logMetric('loader_flushes', { outcome: 'held' satisfies FlushOutcome });
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
    {
      id: 'loads-held',
      displayName: `Loads held back by BigQuery for ${t.loadsHeld.windowSeconds / 60} min`,
      combiner: 'AND',
      conditions: [
        above(`at least ${t.loadsHeld.minHeld} flushes held in ${t.loadsHeld.windowSeconds / 60} min`, held, t.loadsHeld.minHeld - 1, sum(t.loadsHeld.windowSeconds)),
        above(`more than ${t.loadsHeld.heldRatio * 100}% of flushes held (every one at the 60 s spacing)`, held, t.loadsHeld.heldRatio, sum(t.loadsHeld.windowSeconds), {
          denominatorFilter: logMetric('loader_flushes'),
          denominatorAggregations: sum(t.loadsHeld.windowSeconds),
        }),
      ],
      documentation: LOADS_HELD_DOCUMENTATION,
    },
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
          documentation: spec.apply((a) => (a.documentation ? { content: a.documentation, mimeType: 'text/markdown' } : undefined)),
          notificationChannels: args.channels,
        },
        { parent: this, dependsOn: args.dependsOn },
      );
    }
    this.registerOutputs({});
  }
}
