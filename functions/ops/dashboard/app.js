// The dashboard's browser side: fetches /dashboard/data.json (computed on the server by
// functions/ops/dashboard-model.ts) and draws it; no figure is computed here, only formatted.
/* global uPlot */
const pct = (v, digits = 2) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(digits)}%`);
const num = (v, digits = 2) => (v === null || v === undefined ? '–' : v.toFixed(digits));

function cell(text, attrs = {}, cls = '') {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  return td;
}

function renderSlos(slos) {
  const body = document.querySelector('#slos tbody');
  body.replaceChildren(
    ...slos.map((slo) => {
      const tr = document.createElement('tr');
      tr.dataset.slo = slo.id;
      const field = (name, value) => ({ 'data-field': name, 'data-value': value === null ? '' : String(value) });
      tr.append(
        cell(slo.displayName),
        cell(pct(slo.goal, 1), field('goal', slo.goal)),
        cell(pct(slo.sli, 3), field('sli', slo.sli), slo.sli === null ? '' : slo.sli >= slo.goal ? 'ok' : 'bad'),
        cell(`${slo.good} / ${slo.total}`, field('total', slo.total)),
        cell(pct(slo.budgetRemaining, 1), field('budget', slo.budgetRemaining), slo.budgetRemaining >= 0 ? 'ok' : 'bad'),
      );
      for (const name of ['fast', 'slow']) {
        const a = slo.alerts.find((x) => x.name === name);
        tr.append(
          cell(`${num(a.longBurn)} / ${num(a.shortBurn)}`, field(`${name}-burn`, a.longBurn), a.firing ? 'bad' : 'ok'),
          cell(`${a.threshold}×${a.firing ? ' FIRING' : ''}`, { ...field(`${name}-threshold`, a.threshold), 'data-firing': String(a.firing) }),
        );
      }
      return tr;
    }),
  );
}

function renderLoadsHeld(h) {
  const row = document.querySelector('#loads-held tbody tr');
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  field('held').textContent = `${h.held} of ${h.flushes} (${h.windowSeconds / 60} min)`;
  Object.assign(field('held').dataset, { held: String(h.held), flushes: String(h.flushes) });
  field('threshold').textContent = `≥ ${h.minHeld} and > ${pct(h.heldRatio, 0)}`;
  field('state').textContent = h.firing ? 'FIRING: files wait pending; they load once BigQuery is back' : 'ok';
  field('state').className = h.firing ? 'bad' : 'ok';
  row.dataset.firing = String(h.firing);
}

const charts = new Map();
function plot(id, t, series, options = {}) {
  const el = document.getElementById(id);
  const data = [t, ...series.map((s) => s.values)];
  let chart = charts.get(id);
  if (!chart) {
    chart = new uPlot(
      {
        width: Math.max(480, el.clientWidth || 520),
        height: 220,
        scales: { x: { time: true }, y: options.y ?? {} },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: s.dash ? 1 : 2, dash: s.dash, spanGaps: true }))],
        axes: [{}, { size: 60 }],
      },
      data,
      el,
    );
    charts.set(id, chart);
  } else chart.setData(data);
}

const flat = (t, v) => t.map(() => v);

async function refresh() {
  const model = await (await fetch('/dashboard/data.json')).json();
  document.getElementById('at').textContent = model.at;
  renderSlos(model.slos);
  renderLoadsHeld(model.loadsHeld);
  const { series: s, thresholds: th } = model;
  plot('latency', s.t, [
    { label: 'p50', values: s.latencyP50, stroke: '#2f81f7' },
    { label: 'p95', values: s.latencyP95, stroke: '#bf8700' },
    { label: 'p99', values: s.latencyP99, stroke: '#cf222e' },
    { label: 'SLO 0.3 s', values: flat(s.t, th.latencySeconds), stroke: '#6a737d', dash: [5, 5] },
  ]);
  plot('rate', s.t, [
    { label: 'uploads/h', values: s.uploadsPerHour, stroke: '#2f81f7' },
    { label: 'min', values: flat(s.t, th.uploadsPerHour.min), stroke: '#6a737d', dash: [5, 5] },
    { label: 'max', values: flat(s.t, th.uploadsPerHour.max), stroke: '#6a737d', dash: [5, 5] },
  ]);
  plot('errors', s.t, [
    { label: '5xx ratio', values: s.ratio5xx, stroke: '#cf222e' },
    { label: 'alert', values: flat(s.t, th.gateway5xxRatio), stroke: '#6a737d', dash: [5, 5] },
  ]);
  plot('freshness', s.t, [
    { label: 'p50', values: s.freshnessP50, stroke: '#2f81f7' },
    { label: 'p95', values: s.freshnessP95, stroke: '#bf8700' },
    { label: 'SLO 120 s', values: flat(s.t, th.freshnessSeconds), stroke: '#6a737d', dash: [5, 5] },
  ]);
  plot('dlq', s.t, [{ label: 'dead letters waiting', values: s.deadLetterBacklog, stroke: '#8250df' }], { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } });
  document.body.dataset.ready = 'true';
}

await refresh();
setInterval(() => void refresh().catch(() => undefined), 5000);
