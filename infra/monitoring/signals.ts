/**
 * Cloud Monitoring filters for what the SLOs, the alerts and the dashboard
 * watch, written once. Gateway traffic is read from the API's managed service
 * (Service Infrastructure's `api` resource), function traffic from Cloud Run.
 */
import { HTTP_FUNCTIONS, type FunctionName } from '../../functions/core/topology.js';
import { kebab } from '../functions.js';
import { logMetricType, type LogMetricId } from './log-metrics.js';

const quote = (s: string): string => JSON.stringify(s);
const oneOf = (values: readonly string[]): string => `one_of(${values.map(quote).join(', ')})`;

export const gatewayRequests = (managedService: string): string =>
  `metric.type="serviceruntime.googleapis.com/api/request_count" resource.type="api" resource.label."service"=${quote(managedService)}`;
export const gateway5xx = (managedService: string): string => `${gatewayRequests(managedService)} metric.label."response_code_class"="5xx"`;

/** Cloud Run request latency (ms) of the `upload` function, which serves POST /upload. */
export const uploadLatency = (): string =>
  `metric.type="run.googleapis.com/request_latencies" resource.type="cloud_run_revision" resource.label."service_name"=${quote(kebab('upload'))}`;

export const functionRequests = (functions: readonly FunctionName[]): string =>
  `metric.type="run.googleapis.com/request_count" resource.type="cloud_run_revision" resource.label."service_name"=${oneOf(functions.map(kebab))}`;
export const functionErrors = (functions: readonly FunctionName[]): string => `${functionRequests(functions)} metric.label."response_code_class"="5xx"`;

export const logMetric = (id: LogMetricId, labels: Record<string, string> = {}): string =>
  [`metric.type=${quote(logMetricType(id))}`, 'resource.type="cloud_run_revision"', ...Object.entries(labels).map(([k, v]) => `metric.label."${k}"=${quote(v)}`)].join(' ');

export const undelivered = (subscriptions: readonly string[]): string =>
  `metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" resource.type="pubsub_subscription" resource.label."subscription_id"=${oneOf(subscriptions)}`;
export const oldestUnacked = (subscriptions: readonly string[]): string =>
  `metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age" resource.type="pubsub_subscription" resource.label."subscription_id"=${oneOf(subscriptions)}`;

export const sloBurnRate = (sloName: string, windowSeconds: number): string => `select_slo_burn_rate(${quote(sloName)}, "${windowSeconds}s")`;
export const sloCompliance = (sloName: string): string => `select_slo_compliance(${quote(sloName)})`;
export const sloBudget = (sloName: string): string => `select_slo_budget_fraction(${quote(sloName)})`;

export { HTTP_FUNCTIONS };
