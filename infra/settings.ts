/**
 * What differs between stacks, read from Pulumi stack config (`flights:*`,
 * `gcp:project`). Everything else is derived, so `develop` and `master` run
 * the same program.
 */
import { FUNCTIONS, type FunctionName } from '../functions/core/topology.js';

/** Resources of one function; a stack sets `flights:functions.default` and overrides per function. */
export interface FunctionSizing {
  /** Cloud Run memory, e.g. `512Mi`. */
  memory: string;
  /** vCPUs; more than 1 is needed for concurrency above 1. */
  cpu: string;
  timeoutSeconds: number;
  minInstances: number;
  maxInstances: number;
  /** Requests one instance serves at once. */
  concurrency: number;
}

export interface ChatWebhook {
  /** Display name of the channel. */
  name: string;
  url: string;
}

export interface GithubRepo {
  owner: string;
  name: string;
}

export interface StackSettings {
  stack: string;
  project: string;
  region: string;
  bigQueryLocation: string;
  /** Short commit SHA of the function zips in the artifacts bucket (set by ci/deploy). */
  sourceVersion: string;
  logLevel: string;
  sizing: Record<FunctionName, FunctionSizing>;
  /** Secret Manager secret holding the cursor-signing key; created before the first deploy (docs/deploy.md). */
  cursorSecretId: string;
  alertEmails: string[];
  chatWebhooks: ChatWebhook[];
  /** Where the Cloud Build triggers watch; no triggers without it. */
  github?: GithubRepo;
  /** Secret Manager secrets the pipeline reads (Pulumi token, API key, webhook URL). */
  buildSecretIds: string[];
  /** Browser origins allowed to call the API (CORS); none turns CORS off. */
  corsOrigins: string[];
}

/** The subset of `pulumi.Config` settings are read from, so tests can feed a stack file. */
export interface ConfigSource {
  get(key: string): string | undefined;
  getObject<T>(key: string): T | undefined;
}

const DEFAULT_SIZING: FunctionSizing = { memory: '512Mi', cpu: '1', timeoutSeconds: 60, minInstances: 0, maxInstances: 10, concurrency: 1 };

function required(source: ConfigSource, key: string): string {
  const value = source.get(key);
  if (!value) throw new Error(`stack config ${key} is required`);
  return value;
}

export function readSettings(stack: string, flights: ConfigSource, gcp: ConfigSource): StackSettings {
  const sizes = flights.getObject<Partial<Record<FunctionName | 'default', Partial<FunctionSizing>>>>('functions') ?? {};
  const unknown = Object.keys(sizes).filter((k) => k !== 'default' && !(FUNCTIONS as readonly string[]).includes(k));
  if (unknown.length) throw new Error(`flights:functions names no such function: ${unknown.join(', ')}`);
  const base = { ...DEFAULT_SIZING, ...sizes.default };
  const github = flights.getObject<GithubRepo>('github');
  return {
    stack,
    project: required(gcp, 'project'),
    region: required(gcp, 'region'),
    bigQueryLocation: flights.get('bigQueryLocation') ?? 'US',
    sourceVersion: required(flights, 'sourceVersion'),
    logLevel: flights.get('logLevel') ?? 'info',
    sizing: Object.fromEntries(FUNCTIONS.map((f) => [f, { ...base, ...sizes[f] }])) as Record<FunctionName, FunctionSizing>,
    cursorSecretId: flights.get('cursorSecretId') ?? 'flights-cursor-secret',
    alertEmails: flights.getObject<string[]>('alertEmails') ?? [],
    chatWebhooks: flights.getObject<ChatWebhook[]>('chatWebhooks') ?? [],
    ...(github ? { github } : {}),
    buildSecretIds: flights.getObject<string[]>('buildSecretIds') ?? ['pulumi-access-token', 'flights-api-key', 'chat-webhook-url'],
    corsOrigins: flights.getObject<string[]>('corsOrigins') ?? [],
  };
}
