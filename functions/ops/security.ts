/**
 * What the OpenAPI (Swagger 2.0) spec declares about access, read the way API
 * Gateway reads it: `securityDefinitions` names the schemes (API keys in a
 * header or the query, Google-style JWTs), `security` lists alternatives
 * (any one satisfied is enough; the schemes inside one alternative must all
 * be satisfied), an operation's own `security` replaces the document's, and
 * `security: []` makes an operation public. Quotas come from
 * `x-google-management` and each operation's `x-google-quota`.
 */

export type SecurityScheme =
  | { kind: 'apiKey'; name: string; in: 'header' | 'query' }
  | { kind: 'jwt'; issuer: string; jwksUri: string; audiences: string[] };

/** One alternative: every named scheme must be satisfied. */
export type SecurityAlternative = string[];

export interface Quota {
  /** The quota limit's name and the metric the operation spends. */
  limit: string;
  metric: string;
  /** Requests allowed per window per consumer. */
  perWindow: number;
  windowSeconds: number;
  /** What one call of this operation costs. */
  cost: number;
}

export interface OperationAccess {
  /** Empty: the operation is public. */
  alternatives: SecurityAlternative[];
  quotas: Quota[];
}

interface RawScheme {
  type?: string;
  name?: string;
  in?: string;
  'x-google-issuer'?: string;
  'x-google-jwks_uri'?: string;
  'x-google-audiences'?: string;
}

interface RawLimit {
  name?: string;
  metric?: string;
  unit?: string;
  values?: { STANDARD?: number };
}

export interface SpecAccessView {
  securityDefinitions?: Record<string, RawScheme>;
  security?: Record<string, string[]>[];
  'x-google-management'?: { quota?: { limits?: RawLimit[] } };
}

export interface OperationAccessView {
  security?: Record<string, string[]>[];
  'x-google-quota'?: { metricCosts?: Record<string, number> };
}

/** The schemes of the spec; a scheme this gateway cannot enforce is an error, not a silently open door. */
export function securitySchemes(spec: SpecAccessView): Record<string, SecurityScheme> {
  const schemes: Record<string, SecurityScheme> = {};
  for (const [name, raw] of Object.entries(spec.securityDefinitions ?? {})) {
    if (raw.type === 'apiKey' && raw.name && (raw.in === 'header' || raw.in === 'query')) {
      schemes[name] = { kind: 'apiKey', name: raw.name.toLowerCase(), in: raw.in };
    } else if (raw.type === 'oauth2' && raw['x-google-issuer']) {
      if (!raw['x-google-jwks_uri']) throw new Error(`securityDefinitions.${name}: x-google-jwks_uri is required to verify tokens locally`);
      const audiences = (raw['x-google-audiences'] ?? '').split(',').map((a) => a.trim()).filter(Boolean);
      schemes[name] = { kind: 'jwt', issuer: raw['x-google-issuer'], jwksUri: raw['x-google-jwks_uri'], audiences };
    } else {
      throw new Error(`securityDefinitions.${name}: not an apiKey (header or query) or an oauth2 scheme with x-google-issuer`);
    }
  }
  return schemes;
}

/** `1/min/{project}` → 60 s; API Gateway quotas are per minute. */
function windowSeconds(unit = ''): number {
  if (!/^1\/min\/\{project\}$/.test(unit)) throw new Error(`x-google-management quota unit ${JSON.stringify(unit)}: only 1/min/{project} is supported`);
  return 60;
}

export function operationAccess(spec: SpecAccessView, operation: OperationAccessView, where: string): OperationAccess {
  const schemes = securitySchemes(spec);
  const requirements = operation.security ?? spec.security ?? [];
  const alternatives = requirements.map((alt) => {
    const names = Object.keys(alt);
    for (const n of names) if (!schemes[n]) throw new Error(`${where}: security names ${n}, which securityDefinitions does not define`);
    return names;
  });
  const limits = spec['x-google-management']?.quota?.limits ?? [];
  const quotas: Quota[] = [];
  for (const [metric, cost] of Object.entries(operation['x-google-quota']?.metricCosts ?? {})) {
    for (const limit of limits.filter((l) => l.metric === metric)) {
      const perWindow = limit.values?.STANDARD;
      if (!limit.name || perWindow === undefined) throw new Error(`x-google-management quota limit on ${metric}: name and values.STANDARD are required`);
      quotas.push({ limit: limit.name, metric, perWindow, windowSeconds: windowSeconds(limit.unit), cost });
    }
  }
  // An empty alternative (`- {}`) lets anyone in, as an empty list does.
  return { alternatives: alternatives.some((a) => a.length === 0) ? [] : alternatives, quotas };
}
