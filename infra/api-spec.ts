/**
 * openapi/openapi.yaml as API Gateway gets it: each `${functions.<target>}`
 * replaced by the deployed function's URL, and checked against what API
 * Gateway (ESPv2) needs but Swagger validation does not know about.
 */
import { parse, parseDocument } from 'yaml';

const BACKEND = /\$\{functions\.(\w+)\}/g;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/** The only route that may be called without an API key. */
export const PUBLIC_PATHS: readonly string[] = ['/health'];
/** ESPv2's response deadline when an operation sets none. */
export const DEFAULT_GATEWAY_DEADLINE_SECONDS = 15;
/** Cloud Run's (and so a gen2 HTTP function's) longest request: a longer gateway deadline could never be used. */
export const MAX_GATEWAY_DEADLINE_SECONDS = 3600;

export interface SpecOperation {
  operationId?: string;
  security?: Record<string, string[]>[];
  'x-google-backend'?: { address?: string; deadline?: number; path_translation?: string };
  'x-google-quota'?: { metricCosts?: Record<string, number> };
}

export interface GatewaySpec {
  swagger: string;
  'x-google-endpoints'?: { name: string; allowCors?: boolean }[];
  security?: Record<string, string[]>[];
  securityDefinitions?: Record<string, { type: string; name?: string; in?: string }>;
  'x-google-management'?: {
    metrics?: { name: string; valueType?: string; metricKind?: string }[];
    quota?: { limits?: { name: string; metric: string; unit: string; values: Record<string, number> }[] };
  };
  paths: Record<string, Partial<Record<(typeof METHODS)[number], SpecOperation>>>;
}

export interface OperationRef {
  method: (typeof METHODS)[number];
  path: string;
  operation: SpecOperation;
}

export function operations(spec: GatewaySpec): OperationRef[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => (item[method] ? [{ method, path, operation: item[method]! }] : [])),
  );
}

/** The functions the spec routes to. */
export function backendTargets(specText: string): string[] {
  return [...new Set([...specText.matchAll(BACKEND)].map((m) => m[1]!))].sort();
}

/** The spec with every backend placeholder replaced; a placeholder without a URL is an error, not a broken route. */
export function withBackends(specText: string, urls: Readonly<Record<string, string>>): string {
  return specText.replace(BACKEND, (_all, target: string) => {
    const url = urls[target];
    if (!url) throw new Error(`openapi.yaml routes to \${functions.${target}}, which has no deployed URL`);
    return url;
  });
}

/**
 * The spec with CORS preflights passed on to the functions (which answer them, functions/core/cors.ts):
 * ESPv2 does so only when the API's own managed service is listed with `allowCors`, a name that
 * exists once the API does, so it is added here rather than in openapi.yaml.
 */
export function withCorsPassThrough(specText: string, managedService: string): string {
  const doc = parseDocument(specText);
  doc.set('x-google-endpoints', [{ name: managedService, allowCors: true }]);
  return doc.toString();
}

/** Swagger's rule: an operation's own `security` replaces the document's. An empty list means no key. */
export const effectiveSecurity = (spec: GatewaySpec, op: SpecOperation): Record<string, string[]>[] => op.security ?? spec.security ?? [];

/**
 * What would make the gateway serve the API other than intended: a route open
 * without a key, a backend cut at the 15 s default, a quota on an undefined metric.
 */
export function gatewayProblems(spec: GatewaySpec): string[] {
  const problems: string[] = [];
  const definitions = spec.securityDefinitions ?? {};
  const metrics = new Set((spec['x-google-management']?.metrics ?? []).map((m) => m.name));
  for (const limit of spec['x-google-management']?.quota?.limits ?? []) {
    if (!metrics.has(limit.metric)) problems.push(`quota limit ${limit.name} counts undefined metric ${limit.metric}`);
    // Endpoints/API Gateway enforce only per-minute, per-consumer-project limits.
    if (limit.unit !== '1/min/{project}') problems.push(`quota limit ${limit.name}: unit must be 1/min/{project}, got ${limit.unit}`);
  }
  for (const { method, path, operation } of operations(spec)) {
    const where = `${method.toUpperCase()} ${path}`;
    const security = effectiveSecurity(spec, operation);
    for (const name of security.flatMap((s) => Object.keys(s))) {
      if (definitions[name]?.type !== 'apiKey') problems.push(`${where}: security ${name} is not an apiKey definition`);
    }
    const open = security.length === 0;
    if (open && !PUBLIC_PATHS.includes(path)) problems.push(`${where}: callable without an API key`);
    if (!open && PUBLIC_PATHS.includes(path)) problems.push(`${where}: a health check must not need a key`);
    const deadline = operation['x-google-backend']?.deadline;
    if (deadline === undefined) problems.push(`${where}: no explicit x-google-backend deadline (the default is ${DEFAULT_GATEWAY_DEADLINE_SECONDS} s)`);
    else if (!(deadline > 0 && deadline <= MAX_GATEWAY_DEADLINE_SECONDS)) problems.push(`${where}: deadline ${deadline} outside (0, ${MAX_GATEWAY_DEADLINE_SECONDS}]`);
    const costs = operation['x-google-quota']?.metricCosts ?? {};
    if (!open && Object.keys(costs).length === 0) problems.push(`${where}: counts against no quota`);
    for (const metric of Object.keys(costs)) if (!metrics.has(metric)) problems.push(`${where}: quota metric ${metric} is not defined`);
  }
  return problems;
}

export const parseSpec = (text: string): GatewaySpec => parse(text) as GatewaySpec;
