/** The dashboard's figures: windows over the sampled history, and the history surviving a restart. */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FRESHNESS_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS, SLOS } from '../../functions/core/slo.js';
import { dashboardModel, trailing, windowCounts, type DashboardModel } from '../../functions/ops/dashboard-model.js';
import { compact, FINE_SECONDS, type Sample } from '../../functions/ops/history.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline } from '../support/pipeline.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const availability = SLOS.find((s) => s.id === 'availability')!;
const latency = SLOS.find((s) => s.id === 'upload-latency')!;

function sample(secondsAgo: number, fields: Partial<Sample> = {}): Sample {
  return {
    t: NOW - secondsAgo * 1000,
    seconds: 60,
    requests: 0,
    errors5xx: 0,
    uploadRequests: 0,
    uploadLatency: new Array<number>(LATENCY_BUCKETS_SECONDS.length + 1).fill(0),
    uploads: 0,
    freshness: new Array<number>(FRESHNESS_BUCKETS_SECONDS.length + 1).fill(0),
    flushes: 0,
    flushesHeld: 0,
    deadLetterBacklog: 0,
    ...fields,
  };
}

/** Latency buckets with `fast` requests at ≤ 0.3 s (the 0.2–0.3 bucket) and `slow` at 0.5–1 s. */
function latencies(fast: number, slow: number): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS_SECONDS.length + 1).fill(0);
  counts[LATENCY_BUCKETS_SECONDS.indexOf(0.3)] = fast;
  counts[LATENCY_BUCKETS_SECONDS.indexOf(1)] = slow;
  return counts;
}

describe('dashboard model', () => {
  it('counts a window from the samples that ended inside it', () => {
    const samples = [sample(7200, { requests: 1000, errors5xx: 100 }), sample(1800, { requests: 1000, errors5xx: 10 }), sample(120, { requests: 100, errors5xx: 5 })];
    expect(windowCounts(availability, samples, NOW, 300)).toEqual({ good: 95, total: 100 });
    expect(windowCounts(availability, samples, NOW, 3600)).toEqual({ good: 1085, total: 1100 });
    expect(windowCounts(availability, samples, NOW, 28 * 86_400)).toEqual({ good: 1985, total: 2100 });
  });

  it('fast burn: the hour at 15/1100 errors is 13.6×, below 14.4, so no page though the last 5 minutes burn 50×', () => {
    const samples = [sample(1800, { requests: 1000, errors5xx: 10 }), sample(120, { requests: 100, errors5xx: 5 })];
    const view = dashboardModel(samples, NOW).slos.find((s) => s.id === 'availability')!;
    const fast = view.alerts.find((a) => a.name === 'fast')!;
    // 15/1100 = 1.3636% errors / 0.1% allowed = 13.64×; 5/100 = 5% / 0.1% = 50×.
    expect(fast.longBurn).toBeCloseTo(13.636364, 5);
    expect(fast.shortBurn).toBeCloseTo(50, 9);
    expect(fast.firing).toBe(false);
    // SLI 1085/1100; budget left 1 − 13.64 = −12.64.
    expect(view.sli).toBeCloseTo(1085 / 1100, 12);
    expect(view.budgetRemaining).toBeCloseTo(1 - 15 / 1100 / 0.001, 9);
  });

  it('latency SLO: good is a POST /upload under 300 ms (the bucket edge), bad above it', () => {
    const samples = [sample(60, { uploadRequests: 20, uploadLatency: latencies(18, 2) })];
    const view = dashboardModel(samples, NOW).slos.find((s) => s.id === latency.id)!;
    expect(view).toMatchObject({ good: 18, total: 20, sli: 0.9 });
    // 10% slow against 5% allowed: 2× in every window.
    expect(view.alerts.map((a) => a.longBurn)).toEqual([2, 2, 2].map((x) => expect.closeTo(x, 9)));
  });

  it('plots the upload rate over the trailing hour and the 5xx ratio over the trailing 5 minutes', () => {
    // Two uploads a minute → 120 an hour.
    const samples = [0, 1, 2, 3].map((i) => sample(600 - i * 60, { uploads: 2, requests: 10, errors5xx: i === 0 ? 10 : 0 }));
    const { series } = dashboardModel(samples, NOW);
    expect(series.uploadsPerHour).toEqual([120, 120, 120, 120]);
    expect(series.ratio5xx).toEqual([1, 0.5, 10 / 30, 10 / 40]);
    expect(trailing(samples, 120, (s) => [s.uploads, 1])).toEqual([[2, 1], [4, 2], [4, 2], [4, 2]]);
  });

  it('loads held: fires when the last 30 minutes held at least 5 flushes and every one of them, as the cloud policy does', () => {
    const held = (secondsAgo: number) => sample(secondsAgo, { flushes: 1, flushesHeld: 1 });
    const outage = [1500, 1200, 900, 600, 300].map(held);
    // An ok flush before the window does not count; one inside it means loads still get through.
    expect(dashboardModel([sample(2400, { flushes: 1 }), ...outage], NOW).loadsHeld).toMatchObject({ windowSeconds: 1800, flushes: 5, held: 5, firing: true });
    expect(dashboardModel([...outage, sample(120, { flushes: 1 })], NOW).loadsHeld).toMatchObject({ flushes: 6, held: 5, firing: false });
    expect(dashboardModel(outage.slice(1), NOW).loadsHeld).toMatchObject({ held: 4, firing: false });
    expect(dashboardModel([], NOW).loadsHeld).toMatchObject({ flushes: 0, held: 0, firing: false });
  });

  it('keeps recent samples, merges older ones per hour and drops what is older than the SLO period', () => {
    const old = [sample(FINE_SECONDS + 3600 * 2 + 60, { requests: 1 }), sample(FINE_SECONDS + 3600 * 2 + 120, { requests: 2 })];
    const ancient = sample(29 * 86_400, { requests: 100 });
    const recent = sample(60, { requests: 5 });
    const kept = compact([ancient, ...old, recent], NOW);
    expect(kept.map((s) => s.requests)).toEqual([3, 5]);
    expect(kept[0]!.seconds).toBe(120);
  });
});

/** Prometheus text → the value of each series line. */
function scrape(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

describe('dashboard over the pipeline', () => {
  it('shows what /metrics counts, and still shows it after a restart', async () => {
    let p = await startTestPipeline();
    const { dataDir } = p;
    try {
      const ok = await fetch(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: flightsCsv(5, 1) });
      expect(ok.status).toBe(201);
      expect((await fetch(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: flightsCsv(4, 2).replace('2013,', '2013x,') })).status).toBe(422);
      const { uploadId } = (await ok.json()) as { uploadId: string };
      await eventually(async () => ((await p.rt.ledger.get(uploadId))?.status === 'loaded' ? true : undefined));
      // The flush counts itself after it settled its files.
      await eventually(async () => ((await (await fetch(`${p.url}/metrics`)).text()).includes('flights_loader_flushes_total{') ? true : undefined));

      const metrics = scrape(await (await fetch(`${p.url}/metrics`)).text());
      const model = (await (await fetch(`${p.url}/dashboard/data.json`)).json()) as DashboardModel;
      const requests = metrics.filter((m) => m.name === 'flights_http_requests_total').reduce((a, m) => a + m.value, 0);
      expect(requests).toBe(2);
      expect(model.slos.find((s) => s.id === 'availability')).toMatchObject({ total: requests, good: requests, sli: 1 });
      expect(model.slos.find((s) => s.id === 'freshness')).toMatchObject({ total: 1 });
      expect(metrics.find((m) => m.name === 'flights_rows_rejected_total')).toMatchObject({ labels: { reason: 'invalid-csv' }, value: 4 });
      expect(metrics.find((m) => m.name === 'flights_upload_rows_total')?.value).toBe(5);
      // The dashboard's own requests are not API traffic.
      expect(((await (await fetch(`${p.url}/dashboard/data.json`)).json()) as DashboardModel).slos[1]!.total).toBe(2);
      const flushes = metrics.filter((m) => m.name === 'flights_loader_flushes_total').reduce((a, m) => a + m.value, 0);
      expect(flushes).toBeGreaterThan(0);
      expect(model.loadsHeld).toMatchObject({ flushes, held: 0, firing: false });

      await p.stop();
      // A sample written before flushes were counted reads as none, not as NaN.
      const { flushes: _f, flushesHeld: _h, ...older } = sample(0);
      fs.appendFileSync(path.join(dataDir, 'ops', 'history.jsonl'), `${JSON.stringify({ ...older, t: Date.now() })}\n`);
      p = await startTestPipeline({ dataDir });
      const after = (await (await fetch(`${p.url}/dashboard/data.json`)).json()) as DashboardModel;
      expect(after.slos.find((s) => s.id === 'availability')).toMatchObject({ total: 2 });
      expect(after.loadsHeld).toMatchObject({ flushes, held: 0 });
      expect(after.series.t.length).toBeGreaterThanOrEqual(1);
      const page = await fetch(`${p.url}/dashboard`);
      expect(await page.text()).toContain('/dashboard/uplot.js');
      expect((await fetch(`${p.url}/dashboard/uplot.js`)).headers.get('content-type')).toMatch(/javascript/);
    } finally {
      await p.stop();
    }
  });

  it('counts an upload whose client left before the answer as 499', async () => {
    const p = await startTestPipeline();
    try {
      const socket = net.connect(Number(new URL(p.url).port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\nYear,Month');
      await new Promise((resolve) => setTimeout(resolve, 200));
      socket.destroy();
      const left = async (): Promise<true | undefined> =>
        scrape(await (await fetch(`${p.url}/metrics`)).text()).some((m) => m.name === 'flights_http_requests_total' && m.labels.route === '/upload' && m.labels.status === '499') || undefined;
      await eventually(left);
    } finally {
      await p.stop();
    }
  });
});
