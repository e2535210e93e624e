/**
 * Log-based metrics: what the functions' structured log lines (pino JSON,
 * `message` + fields, read by Cloud Logging as jsonPayload) say about uploads
 * and loads, counted by Cloud Monitoring. Each names the exact line it reads;
 * infra/log-lines.test.ts checks the pipeline still writes those lines.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { FRESHNESS_BUCKETS_SECONDS } from '../../functions/core/slo.js';
import type { FunctionName } from '../../functions/core/topology.js';
import { kebab } from '../functions.js';

export type LogMetricId = 'rows_loaded' | 'rows_rejected' | 'uploads' | 'upload_to_loaded_seconds' | 'loader_flushes' | 'loader_failures' | 'export_failures';

export interface LogMetricSpec {
  id: LogMetricId;
  description: string;
  /** The functions whose lines count. */
  functions: FunctionName[];
  /** `message` of the lines, exactly, or a regular expression over it. */
  message: string | RegExp;
  /** Field whose number a distribution takes; a counter counts lines. */
  valueField?: string;
  /** Label → field it is read from (or, for `message`, the part of the message). */
  labels?: Record<string, string>;
  /** Fields the line must carry for the metric to mean anything. */
  fields: string[];
  buckets?: readonly number[];
  unit: string;
}

const ROW_BUCKETS = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000] as const;

export const LOG_METRICS: readonly LogMetricSpec[] = [
  {
    id: 'uploads',
    description: 'Uploads by outcome: stored, duplicate, rejected',
    functions: ['upload'],
    message: /^upload (stored|is a duplicate|rejected)/,
    labels: { outcome: 'message' },
    fields: [],
    unit: '1',
  },
  {
    id: 'rows_rejected',
    description: 'Faults found in rejected uploads, by problem',
    functions: ['upload'],
    message: 'upload rejected',
    valueField: 'errorCount',
    labels: { reason: 'problem' },
    fields: ['problem', 'errorCount'],
    buckets: ROW_BUCKETS,
    unit: '1',
  },
  {
    id: 'rows_loaded',
    description: 'Rows loaded into the warehouse, per file',
    functions: ['loadFlights', 'flushLoads'],
    message: 'file loaded',
    valueField: 'rows',
    labels: { status: 'status' },
    fields: ['rows', 'status'],
    buckets: ROW_BUCKETS,
    unit: '1',
  },
  {
    id: 'upload_to_loaded_seconds',
    description: 'Seconds from an upload to its rows being queryable (the freshness SLI)',
    functions: ['loadFlights', 'flushLoads'],
    message: 'file loaded',
    valueField: 'fromUploadSeconds',
    fields: ['fromUploadSeconds'],
    buckets: FRESHNESS_BUCKETS_SECONDS,
    unit: 's',
  },
  {
    id: 'loader_flushes',
    description: 'Loader flushes that ran a warehouse job, by outcome: ok, partial, failed, held (stopped: the warehouse unavailable)',
    functions: ['loadFlights', 'flushLoads'],
    message: 'flush done',
    labels: { outcome: 'outcome' },
    fields: ['outcome'],
    unit: '1',
  },
  {
    id: 'loader_failures',
    description: 'Files quarantined after failing to load',
    functions: ['loadFlights', 'flushLoads'],
    message: 'file quarantined',
    fields: ['object', 'reason'],
    unit: '1',
  },
  {
    id: 'export_failures',
    description: 'Export jobs that failed',
    functions: ['runExport'],
    message: 'export failed',
    fields: ['exportId'],
    unit: '1',
  },
];

export const logMetricType = (id: LogMetricId): string => `logging.googleapis.com/user/${id}`;

const quote = (s: string): string => JSON.stringify(s);

/** The Logging query that selects a metric's lines. */
export function logFilter(spec: LogMetricSpec): string {
  const services = spec.functions.map((f) => `resource.labels.service_name=${quote(kebab(f))}`).join(' OR ');
  const message = typeof spec.message === 'string' ? `jsonPayload.message=${quote(spec.message)}` : `jsonPayload.message=~${quote(spec.message.source)}`;
  const valued = spec.valueField ? ` AND jsonPayload.${spec.valueField}:*` : '';
  return `resource.type="cloud_run_revision" AND (${services}) AND ${message}${valued}`;
}

function labelExtractor(spec: LogMetricSpec, field: string): string {
  if (field === 'message' && spec.message instanceof RegExp) return `REGEXP_EXTRACT(jsonPayload.message, ${quote(spec.message.source)})`;
  return `EXTRACT(jsonPayload.${field})`;
}

export function logMetricArgs(project: string, spec: LogMetricSpec): gcp.logging.MetricArgs {
  const labels = Object.entries(spec.labels ?? {});
  return {
    project,
    name: spec.id,
    description: spec.description,
    filter: logFilter(spec),
    metricDescriptor: {
      metricKind: 'DELTA',
      valueType: spec.valueField ? 'DISTRIBUTION' : 'INT64',
      unit: spec.unit,
      labels: labels.map(([key]) => ({ key, valueType: 'STRING' })),
    },
    labelExtractors: labels.length ? Object.fromEntries(labels.map(([key, field]) => [key, labelExtractor(spec, field)])) : undefined,
    valueExtractor: spec.valueField ? `EXTRACT(jsonPayload.${spec.valueField})` : undefined,
    bucketOptions: spec.buckets ? { explicitBuckets: { bounds: [0, ...spec.buckets] } } : undefined,
  };
}

export class LogMetrics extends pulumi.ComponentResource {
  readonly byId: Record<LogMetricId, gcp.logging.Metric>;

  constructor(name: string, project: string, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:LogMetrics', name, {}, opts);
    this.byId = Object.fromEntries(LOG_METRICS.map((spec) => [spec.id, new gcp.logging.Metric(spec.id, logMetricArgs(project, spec), { parent: this })])) as Record<LogMetricId, gcp.logging.Metric>;
    this.registerOutputs({});
  }
}
