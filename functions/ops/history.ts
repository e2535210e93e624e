/**
 * The dashboard's memory: the metrics sampled at intervals as increments
 * (events in each interval, not running totals, so a restart, which zeroes
 * the counters, breaks nothing), appended to DATA_DIR/ops/history.jsonl and
 * read back at start. Bounded: past FINE_SECONDS samples are merged into
 * hourly ones, and past the longest SLO period they are dropped.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readFileIfExists } from '../adapters/local/small-files.js';
import type { Config } from '../core/config.js';
import type { EventBus } from '../core/ports.js';
import { FRESHNESS_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS, SLOS } from '../core/slo.js';
import { deadLetterSubscription, refreshBacklog } from './backlog.js';
import type { FlushOutcome } from './events.js';
import { metrics } from './metrics.js';

/** What the metrics held at one moment, as running totals since the process started. */
export interface Totals {
  requests: number;
  errors5xx: number;
  /** POST /upload, any status. */
  uploadRequests: number;
  /** POST /upload answered below 500, per latency bucket (not cumulative; the last is +Inf). */
  uploadLatency: number[];
  /** Files that arrived: stored, duplicate or rejected. */
  uploads: number;
  /** Per freshness bucket (not cumulative; the last is +Inf). */
  freshness: number[];
  /** Loader flushes that ran a warehouse job, and those of them the warehouse held back (outcome `held`). */
  flushes: number;
  flushesHeld: number;
}

export interface Sample extends Totals {
  /** End of the interval, ms since the epoch. */
  t: number;
  seconds: number;
  /** Messages waiting in the dead-letter subscription at `t`. */
  deadLetterBacklog: number;
}

export const FINE_SECONDS = 6 * 3600;
export const COARSE_SECONDS = 3600;
export const KEEP_SECONDS = Math.max(...SLOS.map((s) => s.rollingPeriodDays)) * 86_400;

const zeros = (n: number): number[] => new Array<number>(n).fill(0);
const emptyTotals = (): Totals => ({
  requests: 0,
  errors5xx: 0,
  uploadRequests: 0,
  uploadLatency: zeros(LATENCY_BUCKETS_SECONDS.length + 1),
  uploads: 0,
  freshness: zeros(FRESHNESS_BUCKETS_SECONDS.length + 1),
  flushes: 0,
  flushesHeld: 0,
});

/** Cumulative `le` buckets (Prometheus) to per-bucket counts, in `bounds` order with +Inf last. */
function perBucket(bounds: readonly number[], cumulative: Map<string, number>): number[] {
  const les = [...bounds.map(String), '+Inf'];
  let previous = 0;
  return les.map((le) => {
    const c = cumulative.get(le) ?? 0;
    const n = c - previous;
    previous = c;
    return n;
  });
}

/** prom-client types a histogram's values with its own labels only; bucket values carry `le` too. */
const bucketOf = (labels: object): string => String((labels as { le?: unknown }).le);

const UPLOAD_ROUTE = { method: 'POST', route: '/upload' };

export async function readTotals(): Promise<Totals> {
  const totals = emptyTotals();
  for (const { labels, value } of (await metrics.requests.get()).values) {
    totals.requests += value;
    if (Number(labels.status) >= 500) totals.errors5xx += value;
    if (labels.method === UPLOAD_ROUTE.method && labels.route === UPLOAD_ROUTE.route) totals.uploadRequests += value;
  }
  const latency = new Map<string, number>();
  for (const { labels, value, metricName } of (await metrics.requestDuration.get()).values) {
    if (!metricName?.endsWith('_bucket') || labels.method !== UPLOAD_ROUTE.method || labels.route !== UPLOAD_ROUTE.route || Number(labels.status) >= 500) continue;
    const le = bucketOf(labels);
    latency.set(le, (latency.get(le) ?? 0) + value);
  }
  totals.uploadLatency = perBucket(LATENCY_BUCKETS_SECONDS, latency);
  for (const { value } of (await metrics.uploads.get()).values) totals.uploads += value;
  const freshness = new Map<string, number>();
  for (const { labels, value, metricName } of (await metrics.freshness.get()).values) if (metricName?.endsWith('_bucket')) freshness.set(bucketOf(labels), value);
  totals.freshness = perBucket(FRESHNESS_BUCKETS_SECONDS, freshness);
  for (const { labels, value } of (await metrics.flushes.get()).values) {
    totals.flushes += value;
    if (labels.outcome === ('held' satisfies FlushOutcome)) totals.flushesHeld += value;
  }
  return totals;
}

const minus = (a: number[], b: number[]): number[] => a.map((x, i) => x - (b[i] ?? 0));
const plus = (a: number[], b: number[]): number[] => a.map((x, i) => x + (b[i] ?? 0));

export function difference(now: Totals, before: Totals): Totals {
  return {
    requests: now.requests - before.requests,
    errors5xx: now.errors5xx - before.errors5xx,
    uploadRequests: now.uploadRequests - before.uploadRequests,
    uploadLatency: minus(now.uploadLatency, before.uploadLatency),
    uploads: now.uploads - before.uploads,
    freshness: minus(now.freshness, before.freshness),
    flushes: now.flushes - before.flushes,
    flushesHeld: now.flushesHeld - before.flushesHeld,
  };
}

function merge(a: Sample, b: Sample): Sample {
  return {
    t: Math.max(a.t, b.t),
    seconds: a.seconds + b.seconds,
    requests: a.requests + b.requests,
    errors5xx: a.errors5xx + b.errors5xx,
    uploadRequests: a.uploadRequests + b.uploadRequests,
    uploadLatency: plus(a.uploadLatency, b.uploadLatency),
    uploads: a.uploads + b.uploads,
    freshness: plus(a.freshness, b.freshness),
    flushes: a.flushes + b.flushes,
    flushesHeld: a.flushesHeld + b.flushesHeld,
    deadLetterBacklog: a.t >= b.t ? a.deadLetterBacklog : b.deadLetterBacklog,
  };
}

/** Keeps recent samples as they are, merges older ones per hour, drops what is older than every SLO period. */
export function compact(samples: readonly Sample[], now: number): Sample[] {
  const recent: Sample[] = [];
  const hourly = new Map<number, Sample>();
  for (const s of samples) {
    const age = (now - s.t) / 1000;
    if (age > KEEP_SECONDS) continue;
    if (age <= FINE_SECONDS) {
      recent.push(s);
      continue;
    }
    const hour = Math.floor(s.t / (COARSE_SECONDS * 1000));
    const kept = hourly.get(hour);
    hourly.set(hour, kept ? merge(kept, s) : s);
  }
  return [...hourly.values(), ...recent].sort((a, b) => a.t - b.t);
}

export class MetricsHistory {
  private samples: Sample[] = [];
  private baseline: Totals = emptyTotals();
  private lastAt = Date.now();
  private appendedSinceCompaction = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(
    private readonly config: Config,
    private readonly bus: EventBus,
    private readonly intervalMs: number,
  ) {
    this.file = path.join(config.dataDir, 'ops', 'history.jsonl');
  }

  /** Reads what earlier runs kept, and samples from now on. */
  async start(): Promise<void> {
    this.samples = compact(await readSamples(this.file), Date.now());
    this.baseline = await readTotals();
    this.lastAt = Date.now();
    await this.rewrite();
    this.timer = setInterval(() => void this.sample().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  /** Records what happened since the last sample; the dashboard calls it too, so what it shows is up to the moment. */
  async sample(now = Date.now()): Promise<readonly Sample[]> {
    const totals = await readTotals();
    await refreshBacklog(this.config, this.bus, now);
    const backlog = (await metrics.backlog.get()).values.find((v) => v.labels.subscription === deadLetterSubscription(this.config))?.value ?? 0;
    const sample: Sample = { t: now, seconds: Math.max(0, (now - this.lastAt) / 1000), ...difference(totals, this.baseline), deadLetterBacklog: backlog };
    this.baseline = totals;
    this.lastAt = now;
    this.samples.push(sample);
    this.appendedSinceCompaction += 1;
    this.writing = this.writing.then(() => (this.appendedSinceCompaction > 500 ? this.compactAndRewrite(now) : fs.appendFile(this.file, `${JSON.stringify(sample)}\n`)));
    await this.writing;
    return this.samples;
  }

  private async compactAndRewrite(now: number): Promise<void> {
    this.samples = compact(this.samples, now);
    await this.rewrite();
  }

  private async rewrite(): Promise<void> {
    this.appendedSinceCompaction = 0;
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const temp = `${this.file}.tmp`;
    await fs.writeFile(temp, this.samples.map((s) => `${JSON.stringify(s)}\n`).join(''));
    await fs.rename(temp, this.file);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing.catch(() => undefined);
  }
}

/** Lines that do not parse (a write cut short by a crash) are skipped; a count a line predates reads 0. */
async function readSamples(file: string): Promise<Sample[]> {
  const text = readFileIfExists(file)?.toString('utf8');
  if (text === undefined) return [];
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      samples.push({ ...emptyTotals(), ...(JSON.parse(line) as Sample) });
    } catch {
      // a torn last line
    }
  }
  return samples;
}
