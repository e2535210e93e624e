/** What the dashboard shows, computed from the sampled history with the SLO arithmetic of slo-math.ts. */
import { ALERT_THRESHOLDS, BURN_RATE_ALERTS, FRESHNESS_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS, SLOS, type SloDefinition } from '../core/slo.js';
import type { Sample } from './history.js';
import { alertState, budgetRemaining, histogramQuantile, sli, type Counts } from './slo-math.js';

/** Events (good, total) of one SLO in one sample. */
export function sloCounts(slo: SloDefinition, s: Sample): Counts {
  const upTo = (bounds: readonly number[], counts: number[], limit: number): number => counts.slice(0, bounds.filter((b) => b <= limit).length).reduce((a, b) => a + b, 0);
  switch (slo.sli.kind) {
    case 'latency':
      return { good: upTo(LATENCY_BUCKETS_SECONDS, s.uploadLatency, slo.sli.thresholdMs / 1000), total: s.uploadRequests };
    case 'availability':
      return { good: s.requests - s.errors5xx, total: s.requests };
    case 'freshness':
      return { good: upTo(FRESHNESS_BUCKETS_SECONDS, s.freshness, slo.sli.thresholdSeconds), total: s.freshness.reduce((a, b) => a + b, 0) };
  }
}

/** The SLO's events in the samples that ended within the last `seconds`. */
export function windowCounts(slo: SloDefinition, samples: readonly Sample[], now: number, seconds: number): Counts {
  const from = now - seconds * 1000;
  const counts = { good: 0, total: 0 };
  for (const s of samples) {
    if (s.t <= from || s.t > now) continue;
    const c = sloCounts(slo, s);
    counts.good += c.good;
    counts.total += c.total;
  }
  return counts;
}

export interface SloView {
  id: string;
  displayName: string;
  goal: number;
  /** Over the SLO's rolling period (as far back as the history goes); null without events. */
  sli: number | null;
  good: number;
  total: number;
  budgetRemaining: number;
  alerts: { name: string; threshold: number; longWindowSeconds: number; shortWindowSeconds: number; longBurn: number; shortBurn: number; firing: boolean }[];
}

/** The loads-held alert (core/slo.ts ALERT_THRESHOLDS.loadsHeld), on this process's flushes over its window. */
export interface LoadsHeldView {
  windowSeconds: number;
  minHeld: number;
  heldRatio: number;
  flushes: number;
  held: number;
  firing: boolean;
}

export interface Series {
  /** Seconds since the epoch, end of each sample. */
  t: number[];
  latencyP50: (number | null)[];
  latencyP95: (number | null)[];
  latencyP99: (number | null)[];
  uploadsPerHour: (number | null)[];
  ratio5xx: (number | null)[];
  freshnessP50: (number | null)[];
  freshnessP95: (number | null)[];
  deadLetterBacklog: number[];
}

export interface DashboardModel {
  at: string;
  slos: SloView[];
  loadsHeld: LoadsHeldView;
  thresholds: { uploadsPerHour: { min: number; max: number }; gateway5xxRatio: number; deadLetterBacklog: number; latencySeconds: number; freshnessSeconds: number };
  series: Series;
}

const orNull = (v: number | undefined): number | null => (v === undefined ? null : v);

/** For each sample, the sums of `pick` over the samples that ended in the `seconds` up to it (two pointers: linear). */
export function trailing(samples: readonly Sample[], seconds: number, pick: (s: Sample) => [number, number]): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  let a = 0;
  let b = 0;
  for (const s of samples) {
    const [x, y] = pick(s);
    a += x;
    b += y;
    while (samples[start]!.t <= s.t - seconds * 1000) {
      const [ox, oy] = pick(samples[start]!);
      a -= ox;
      b -= oy;
      start += 1;
    }
    out.push([a, b]);
  }
  return out;
}

/** The alert windows: uploads per hour over an hour, the 5xx ratio over 5 minutes (core/slo.ts ALERT_THRESHOLDS). */
export const UPLOAD_RATE_WINDOW_SECONDS = 3600;
export const RATIO_5XX_WINDOW_SECONDS = 300;

/** The cloud policy's two conditions, both: at least `minHeld` held flushes, and more than `heldRatio` of all. */
export function loadsHeld(samples: readonly Sample[], now: number): LoadsHeldView {
  const { windowSeconds, minHeld, heldRatio } = ALERT_THRESHOLDS.loadsHeld;
  let flushes = 0;
  let held = 0;
  for (const s of samples) {
    if (s.t <= now - windowSeconds * 1000 || s.t > now) continue;
    flushes += s.flushes;
    held += s.flushesHeld;
  }
  return { windowSeconds, minHeld, heldRatio, flushes, held, firing: held >= minHeld && held / flushes > heldRatio };
}

export function dashboardModel(samples: readonly Sample[], now: number): DashboardModel {
  const slos = SLOS.map((slo): SloView => {
    const period = windowCounts(slo, samples, now, slo.rollingPeriodDays * 86_400);
    return {
      id: slo.id,
      displayName: slo.displayName,
      goal: slo.goal,
      sli: orNull(sli(period)),
      good: period.good,
      total: period.total,
      budgetRemaining: budgetRemaining(period, slo.goal),
      alerts: BURN_RATE_ALERTS.map((alert) => {
        const state = alertState(alert, slo.goal, windowCounts(slo, samples, now, alert.longWindowSeconds), windowCounts(slo, samples, now, alert.shortWindowSeconds));
        const { longBurn, shortBurn, firing } = state;
        return { name: alert.name, threshold: alert.burnRate, longWindowSeconds: alert.longWindowSeconds, shortWindowSeconds: alert.shortWindowSeconds, longBurn, shortBurn, firing };
      }),
    };
  });
  const plotted = samples.filter((s) => s.seconds > 0);
  const perSample = <T>(f: (s: Sample) => T): T[] => plotted.map(f);
  const latencySlo = SLOS.find((s) => s.sli.kind === 'latency')!;
  const freshnessSlo = SLOS.find((s) => s.sli.kind === 'freshness')!;
  return {
    at: new Date(now).toISOString(),
    slos,
    loadsHeld: loadsHeld(samples, now),
    thresholds: {
      uploadsPerHour: ALERT_THRESHOLDS.uploadsPerHour,
      gateway5xxRatio: ALERT_THRESHOLDS.gateway5xxRatio,
      deadLetterBacklog: ALERT_THRESHOLDS.deadLetterBacklog,
      latencySeconds: latencySlo.sli.kind === 'latency' ? latencySlo.sli.thresholdMs / 1000 : 0,
      freshnessSeconds: freshnessSlo.sli.kind === 'freshness' ? freshnessSlo.sli.thresholdSeconds : 0,
    },
    series: {
      t: perSample((s) => s.t / 1000),
      latencyP50: perSample((s) => orNull(histogramQuantile(0.5, LATENCY_BUCKETS_SECONDS, s.uploadLatency))),
      latencyP95: perSample((s) => orNull(histogramQuantile(0.95, LATENCY_BUCKETS_SECONDS, s.uploadLatency))),
      latencyP99: perSample((s) => orNull(histogramQuantile(0.99, LATENCY_BUCKETS_SECONDS, s.uploadLatency))),
      // Over the hour up to each point, or the time covered so far when the history is shorter.
      uploadsPerHour: trailing(plotted, UPLOAD_RATE_WINDOW_SECONDS, (s) => [s.uploads, s.seconds]).map(([n, secs]) => (secs > 0 ? (n * 3600) / secs : null)),
      ratio5xx: trailing(plotted, RATIO_5XX_WINDOW_SECONDS, (s) => [s.errors5xx, s.requests]).map(([bad, all]) => (all > 0 ? bad / all : null)),
      freshnessP50: perSample((s) => orNull(histogramQuantile(0.5, FRESHNESS_BUCKETS_SECONDS, s.freshness))),
      freshnessP95: perSample((s) => orNull(histogramQuantile(0.95, FRESHNESS_BUCKETS_SECONDS, s.freshness))),
      deadLetterBacklog: perSample((s) => s.deadLetterBacklog),
    },
  };
}
