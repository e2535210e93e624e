/**
 * The service level objectives and alert thresholds, defined once: the Pulumi
 * program (infra/) builds Cloud Monitoring SLOs, burn-rate alerts and alert
 * policies from them, and the local dashboard computes the same SLIs from the
 * process's own metrics. Numbers from the seed system's specification and the
 * SRE workbook's multi-window, multi-burn-rate alerting.
 */

export type SloId = 'upload-latency' | 'availability' | 'freshness';

export type Sli =
  /** Good = requests to `route` answered (any status below 500) faster than `thresholdMs`. */
  | { kind: 'latency'; route: { method: 'POST'; path: '/upload' }; thresholdMs: number }
  /** Good = requests through the gateway not answered 5xx. */
  | { kind: 'availability' }
  /** Good = uploaded files queryable within `thresholdSeconds` of their upload. */
  | { kind: 'freshness'; thresholdSeconds: number };

export interface SloDefinition {
  id: SloId;
  displayName: string;
  /** Fraction of good events the objective asks for (Cloud Monitoring accepts at most 0.999). */
  goal: number;
  rollingPeriodDays: number;
  sli: Sli;
}

export const SLO_PERIOD_DAYS = 28;

export const SLOS: readonly SloDefinition[] = [
  {
    id: 'upload-latency',
    displayName: '95% of POST /upload under 300 ms',
    goal: 0.95,
    rollingPeriodDays: SLO_PERIOD_DAYS,
    sli: { kind: 'latency', route: { method: 'POST', path: '/upload' }, thresholdMs: 300 },
  },
  {
    id: 'availability',
    displayName: '99.9% of gateway requests not 5xx',
    goal: 0.999,
    rollingPeriodDays: SLO_PERIOD_DAYS,
    sli: { kind: 'availability' },
  },
  {
    id: 'freshness',
    displayName: '95% of uploaded files queryable within 2 minutes',
    goal: 0.95,
    rollingPeriodDays: SLO_PERIOD_DAYS,
    sli: { kind: 'freshness', thresholdSeconds: 120 },
  },
];

export interface BurnRateAlert {
  name: 'fast' | 'slow' | 'ticket';
  /** Multiple of the rate that would spend exactly the whole budget over the SLO period. */
  burnRate: number;
  longWindowSeconds: number;
  /** The same burn rate over this shorter window must hold too, so the alert resets soon after recovery. */
  shortWindowSeconds: number;
  severity: 'page' | 'ticket';
}

/** SRE workbook, table 5-8: 2% of the budget in 1 h, 5% in 6 h page; 10% in 3 days opens a ticket. */
export const BURN_RATE_ALERTS: readonly BurnRateAlert[] = [
  { name: 'fast', burnRate: 14.4, longWindowSeconds: 3600, shortWindowSeconds: 300, severity: 'page' },
  { name: 'slow', burnRate: 6, longWindowSeconds: 6 * 3600, shortWindowSeconds: 1800, severity: 'page' },
  { name: 'ticket', burnRate: 1, longWindowSeconds: 3 * 86_400, shortWindowSeconds: 6 * 3600, severity: 'ticket' },
];

/** Threshold alerts beside the SLOs. */
export const ALERT_THRESHOLDS = {
  /** The seed system's band: 50 airports × about 10 flights an hour. Outside it something upstream is wrong. */
  uploadsPerHour: { min: 400, max: 600 },
  /** Gateway 5xx responses over all responses, over 5 minutes. */
  gateway5xxRatio: 0.01,
  /** Function executions that ended in error, over all, over 5 minutes. */
  functionErrorRatio: 0.05,
  /** Any dead-lettered message needs a person. */
  deadLetterBacklog: 0,
  /** Oldest unacknowledged message on a function's subscription. */
  oldestUnackedSeconds: 600,
  /** Files that failed to load, per hour. */
  loaderFailuresPerHour: 0,
  /** Export jobs that failed, per hour. */
  exportFailuresPerHour: 0,
  /**
   * Loads held back by the warehouse (flushes stopped by BigQuery's unavailability or its own job
   * failures, every file left pending): over `windowSeconds`, at least `minHeld` held flushes and more
   * than `heldRatio` of all flushes. The cloud's 60 s flush spacing starts at most 31 flushes in 30
   * minutes, so above 0.97 means every one of them (docs/design.md, infra/ section, "Loads held back by BigQuery").
   */
  loadsHeld: { windowSeconds: 1800, minHeld: 5, heldRatio: 0.97 },
  /** Objects left under staging/ (uploads that never finished); the lifecycle rule deletes them after a day. */
  stagingObjects: 100,
} as const;

/** Histogram bucket edges that make the SLO thresholds exact (a good event is one in a bucket at or below the threshold). */
export const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
export const FRESHNESS_BUCKETS_SECONDS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;
