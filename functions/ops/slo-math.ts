/**
 * The arithmetic of the SLOs in core/slo.ts, on counts of good and total
 * events: the SLI, the error budget left, burn rates, and the SRE workbook's
 * multiwindow burn-rate alerts. Pure, so the dashboard and its tests agree on
 * every figure.
 */
import type { BurnRateAlert } from '../core/slo.js';

export interface Counts {
  good: number;
  total: number;
}

/** Good over total; undefined without events (no traffic says nothing about the objective). */
export const sli = ({ good, total }: Counts): number | undefined => (total > 0 ? good / total : undefined);

/**
 * How fast the budget burns: the error rate over the error rate the goal
 * allows. 1 spends exactly the budget over the SLO period; 0 without events.
 */
export function burnRate({ good, total }: Counts, goal: number): number {
  if (total === 0) return 0;
  return (total - good) / total / (1 - goal);
}

/**
 * The fraction of the period's error budget not yet spent: 1 untouched, 0
 * spent, negative overspent. The budget is (1 − goal) × events, so it grows
 * with traffic, as Cloud Monitoring computes it for request-based SLOs.
 */
export function budgetRemaining(counts: Counts, goal: number): number {
  return 1 - burnRate(counts, goal);
}

export interface AlertState {
  alert: BurnRateAlert;
  longBurn: number;
  shortBurn: number;
  /** Both windows burn at least the alert's rate: fires fast on a real burn, and resets soon after it stops. */
  firing: boolean;
}

export function alertState(alert: BurnRateAlert, goal: number, long: Counts, short: Counts): AlertState {
  const longBurn = burnRate(long, goal);
  const shortBurn = burnRate(short, goal);
  // Inclusive, up to floating-point rounding (0.3 / 0.05 is 5.999…).
  const reaches = (burn: number): boolean => burn >= alert.burnRate - 1e-9;
  return { alert, longBurn, shortBurn, firing: reaches(longBurn) && reaches(shortBurn) };
}

/**
 * The q-quantile of a histogram, as Prometheus's histogram_quantile computes
 * it: linear within the bucket holding the rank, the lowest bucket starting
 * at 0; a rank in the +Inf bucket answers the highest finite bound.
 * `counts[i]` are per bucket (not cumulative), one more than `bounds` (+Inf).
 */
export function histogramQuantile(q: number, bounds: readonly number[], counts: readonly number[]): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const inBucket = counts[i]!;
    if (below + inBucket >= rank && inBucket > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return lower + (bounds[i]! - lower) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1];
}
