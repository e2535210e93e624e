/** SLO arithmetic against cases worked out by hand. */
import { describe, expect, it } from 'vitest';
import { BURN_RATE_ALERTS } from '../../functions/core/slo.js';
import { alertState, budgetRemaining, burnRate, histogramQuantile, sli } from '../../functions/ops/slo-math.js';

const fast = BURN_RATE_ALERTS.find((a) => a.name === 'fast')!;
const slow = BURN_RATE_ALERTS.find((a) => a.name === 'slow')!;

describe('SLI, burn rate, error budget', () => {
  it('99.9% availability: 3 errors in 1000 requests burn the budget 3× and leave −200% of it', () => {
    // error rate 0.003; allowed 0.001 → burn 3; budget 1 request in 1000, 3 spent → 1 − 3 = −2.
    const counts = { good: 997, total: 1000 };
    expect(sli(counts)).toBeCloseTo(0.997, 12);
    expect(burnRate(counts, 0.999)).toBeCloseTo(3, 9);
    expect(budgetRemaining(counts, 0.999)).toBeCloseTo(-2, 9);
  });

  it('95% latency: 2 slow uploads in 100 spend 40% of the budget', () => {
    // allowed 5 slow in 100; 2 spent → burn 0.4, 60% left.
    expect(burnRate({ good: 98, total: 100 }, 0.95)).toBeCloseTo(0.4, 12);
    expect(budgetRemaining({ good: 98, total: 100 }, 0.95)).toBeCloseTo(0.6, 12);
  });

  it('no events: no SLI, nothing burnt, the whole budget left', () => {
    expect(sli({ good: 0, total: 0 })).toBeUndefined();
    expect(burnRate({ good: 0, total: 0 }, 0.95)).toBe(0);
    expect(budgetRemaining({ good: 0, total: 0 }, 0.95)).toBe(1);
  });
});

describe('multiwindow burn-rate alerts (SRE workbook)', () => {
  it('the fast page fires only when both the hour and the last 5 minutes burn ≥ 14.4×', () => {
    // 99.9%: 14.4× burn is an error rate of 1.44%.
    const hour = { good: 9_800, total: 10_000 }; // 2% errors → 20×
    const recovered = { good: 1_000, total: 1_000 }; // last 5 min clean → 0×
    const stillBad = { good: 980, total: 1_000 }; // 2% → 20×
    expect(alertState(fast, 0.999, hour, recovered)).toMatchObject({ longBurn: expect.closeTo(20, 9), shortBurn: 0, firing: false });
    expect(alertState(fast, 0.999, hour, stillBad).firing).toBe(true);
    // A short spike alone is not enough: the hour is at 1% → 10×.
    expect(alertState(fast, 0.999, { good: 9_900, total: 10_000 }, stillBad)).toMatchObject({ longBurn: expect.closeTo(10, 9), firing: false });
  });

  it('the slow page fires at 6× over 6 h and 30 min: 30% errors against a 95% goal is exactly 6×', () => {
    // allowed 5%; 30% errors → 6× (the threshold is inclusive).
    expect(alertState(slow, 0.95, { good: 70, total: 100 }, { good: 7, total: 10 })).toMatchObject({ longBurn: expect.closeTo(6, 9), firing: true });
    // 29% over the long window → 5.8×: below.
    expect(alertState(slow, 0.95, { good: 71, total: 100 }, { good: 7, total: 10 }).firing).toBe(false);
  });
});

describe('histogram quantiles (Prometheus histogram_quantile)', () => {
  const bounds = [0.1, 0.3, 1];
  it('interpolates linearly inside the bucket that holds the rank', () => {
    // 10 in (0, 0.1], 10 in (0.1, 0.3], 0 in (0.3, 1], 0 above.
    // p50: rank 10 → end of the first bucket = 0.1. p75: rank 15 → 0.1 + 0.2 × 5/10 = 0.2.
    expect(histogramQuantile(0.5, bounds, [10, 10, 0, 0])).toBeCloseTo(0.1, 12);
    expect(histogramQuantile(0.75, bounds, [10, 10, 0, 0])).toBeCloseTo(0.2, 12);
  });
  it('a rank in the +Inf bucket answers the highest finite bound; no observations, no answer', () => {
    expect(histogramQuantile(0.99, bounds, [1, 0, 0, 9])).toBe(1);
    expect(histogramQuantile(0.5, bounds, [0, 0, 0, 0])).toBeUndefined();
  });
});
