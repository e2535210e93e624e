/**
 * The functions' environment, and the Config they will read from it: the
 * topology infra wires is the topology the deployed functions compute.
 */
import { loadConfig, type Config } from '../functions/core/config.js';
import type { FunctionName } from '../functions/core/topology.js';
import type { FunctionSizing, StackSettings } from './settings.js';

export const CURSOR_SECRET_ENV = 'CURSOR_SECRET';
export const DATASET = 'flights';

export const dataBucketName = (s: StackSettings): string => `${s.project}-flights-data`;
export const artifactsBucketName = (s: StackSettings): string => `${s.project}-flights-artifacts`;

/** Plain environment variables of every function (CURSOR_SECRET comes from Secret Manager). */
export function functionEnvironment(s: StackSettings): Record<string, string> {
  const defaults = loadConfig({ PROFILE: 'cloud' });
  return {
    PROFILE: 'cloud',
    // Cloud Run functions do not set it, and the clients' own discovery would cost a metadata call per cold start.
    GOOGLE_CLOUD_PROJECT: s.project,
    BUCKET: dataBucketName(s),
    BQ_DATASET: DATASET,
    BQ_LOCATION: s.bigQueryLocation,
    LOG_LEVEL: s.logLevel,
    NOTIFICATION_TOPIC: defaults.notificationTopic,
    LOADER_SUBSCRIPTION: defaults.loaderSubscription,
    VALIDATOR_SUBSCRIPTION: defaults.signedUploads.validatorSubscription,
    DEAD_LETTER_TOPIC: defaults.deadLetterTopic,
    FLUSH_TOPIC: defaults.flushTopic,
    EXPORT_TOPIC: defaults.exports.topic,
    EXPORT_SUBSCRIPTION: defaults.exports.subscription,
    MAX_DELIVERY_ATTEMPTS: String(defaults.maxDeliveryAttempts),
    MIN_BACKOFF_MS: String(defaults.minBackoffMs),
    MAX_BACKOFF_MS: String(defaults.maxBackoffMs),
    ...(s.corsOrigins.length ? { CORS_ORIGINS: s.corsOrigins.join(',') } : {}),
  };
}

/** The functions that validate a CSV as it streams: the inline upload, and the signed upload's validator. */
const VALIDATING: readonly FunctionName[] = ['upload', 'validateUpload'];

/**
 * What one function adds to functionEnvironment. A validating function given more than one vCPU
 * validates large files on the others (VALIDATION_THREADS): the function cannot work that out
 * itself, since os.availableParallelism() counts the host's CPUs, not its vCPU limit (docs/design.md).
 */
export function functionOwnEnvironment(f: FunctionName, size: Pick<FunctionSizing, 'cpu'>): Record<string, string> {
  const threads = Math.floor(Number(size.cpu)) - 1;
  return VALIDATING.includes(f) && threads > 0 ? { VALIDATION_THREADS: String(threads) } : {};
}

/** The Config a deployed function builds from its environment. */
export const deployedConfig = (s: StackSettings): Config => loadConfig({ ...functionEnvironment(s), [CURSOR_SECRET_ENV]: 'from-secret-manager' });
