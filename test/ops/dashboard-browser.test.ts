/**
 * The dashboard in a real headless Chromium: start the pipeline with access
 * control on, drive traffic, open /dashboard, and check that every figure the
 * page shows equals the one computed here from /metrics with the SLO
 * arithmetic. Takes a screenshot; with UPDATE_SCREENSHOTS=1 it replaces
 * images/dashboard.png, the README's, so a plain test run leaves the tree clean.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BURN_RATE_ALERTS, SLOS, type SloDefinition } from '../../functions/core/slo.js';
import { budgetRemaining, burnRate, sli, type Counts } from '../../functions/ops/slo-math.js';
import { driveTraffic } from '../../tools/demo-traffic.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../images/dashboard.png', import.meta.url)) : path.join(os.tmpdir(), `flights-dashboard-${process.pid}.png`);
const KEY = 'browser-test-key';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function scrape(text: string): Series[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      return { name: m[1]!, labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]])), value: Number(m[3]) };
    });
}

/** Each SLO's events from the Prometheus text alone, as an operator would query them. */
function countsFromMetrics(slo: SloDefinition, metrics: Series[]): Counts {
  const sum = (f: (s: Series) => boolean): number => metrics.filter(f).reduce((a, s) => a + s.value, 0);
  const upload = (s: Series): boolean => s.labels.method === 'POST' && s.labels.route === '/upload';
  switch (slo.sli.kind) {
    case 'availability':
      return {
        total: sum((s) => s.name === 'flights_http_requests_total'),
        good: sum((s) => s.name === 'flights_http_requests_total' && Number(s.labels.status) < 500),
      };
    case 'latency': {
      const le = String(slo.sli.thresholdMs / 1000);
      return {
        total: sum((s) => s.name === 'flights_http_requests_total' && upload(s)),
        good: sum((s) => s.name === 'flights_http_request_duration_seconds_bucket' && upload(s) && Number(s.labels.status) < 500 && s.labels.le === le),
      };
    }
    case 'freshness':
      return {
        total: sum((s) => s.name === 'flights_freshness_seconds_count'),
        good: sum((s) => s.name === 'flights_freshness_seconds_bucket' && s.labels.le === String(slo.sli.kind === 'freshness' ? slo.sli.thresholdSeconds : 0)),
      };
  }
}

describe('dashboard in headless Chromium', () => {
  let p: TestPipeline;
  let browser: Browser;

  beforeAll(async () => {
    expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`).toBe(true);
    p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: `demo:${KEY}`, METRICS_SAMPLE_MS: '400' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await p?.stop();
  });

  it('shows per SLO the SLI, the budget left and the burn rates that /metrics gives', async () => {
    // A fixed sequence, not Math.random: every fifth pick is a bad upload, so the run always has some.
    let pick = 0;
    const random = (): number => [0.1, 0.7, 0.3, 0.9, 0.5][pick++ % 5]!;
    const report = await driveTraffic({ url: p.url, key: KEY, steadySeconds: 4, uploadsPerSecond: 3, burstUploads: 6, burstRows: 3000, badShare: 0.2, random });
    expect(report.counts['upload 201']).toBeGreaterThan(0);
    expect(report.counts['bad upload 422']).toBeGreaterThan(0);
    // Let the loader make the last files queryable, so freshness has observations.
    await new Promise((r) => setTimeout(r, 1500));

    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    await page.goto(`${p.url}/dashboard`);
    await page.waitForSelector('body[data-ready="true"]');
    const shown = await page.$$eval('#slos tbody tr', (rows) =>
      rows.map((tr) => ({
        id: tr.getAttribute('data-slo')!,
        fields: Object.fromEntries([...tr.querySelectorAll('[data-field]')].map((td) => [td.getAttribute('data-field'), td.getAttribute('data-value')])),
        text: tr.textContent ?? '',
      })),
    );
    // Nothing has been sent since the page loaded: the counters are the ones the page was computed from.
    const metrics = scrape(await (await fetch(`${p.url}/metrics`)).text());

    expect(shown.map((r) => r.id)).toEqual(SLOS.map((s) => s.id));
    for (const slo of SLOS) {
      const counts = countsFromMetrics(slo, metrics);
      const row = shown.find((r) => r.id === slo.id)!;
      expect(counts.total, slo.id).toBeGreaterThan(0);
      expect(Number(row.fields.total), slo.id).toBe(counts.total);
      expect(Number(row.fields.goal)).toBe(slo.goal);
      expect(Number(row.fields.sli), slo.id).toBeCloseTo(sli(counts)!, 12);
      expect(Number(row.fields.budget), slo.id).toBeCloseTo(budgetRemaining(counts, slo.goal), 9);
      // All the traffic is within the shortest window, so every window's burn is the whole run's.
      for (const alert of BURN_RATE_ALERTS.filter((a) => a.name !== 'ticket')) {
        expect(Number(row.fields[`${alert.name}-burn`]), `${slo.id} ${alert.name}`).toBeCloseTo(burnRate(counts, slo.goal), 9);
        expect(Number(row.fields[`${alert.name}-threshold`])).toBe(alert.burnRate);
      }
      expect(row.text).toContain(`${(slo.goal * 100).toFixed(1)}%`);
    }
    // The loads-held alert over the same flushes: all of this run's are in its 30 minutes, none held.
    const flushes = metrics.filter((s) => s.name === 'flights_loader_flushes_total').reduce((a, s) => a + s.value, 0);
    expect(flushes).toBeGreaterThan(0);
    const held = page.locator('#loads-held [data-field="held"]');
    expect([await held.getAttribute('data-held'), await held.getAttribute('data-flushes')]).toEqual(['0', String(flushes)]);
    expect(await page.locator('#loads-held tbody tr').getAttribute('data-firing')).toBe('false');
    // Five charts, drawn by uPlot from the package the gateway serves.
    expect(await page.locator('.uplot').count()).toBe(5);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    try {
      expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    } finally {
      if (process.env.UPDATE_SCREENSHOTS !== '1') fs.rmSync(SCREENSHOT, { force: true });
    }
  });
});
