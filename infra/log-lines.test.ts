/**
 * The log-based metrics read lines the functions write today: the upload and
 * loader lines are produced by running the embedded pipeline; the failure lines,
 * which need a broken warehouse to appear, are found at their log call.
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../functions/core/logger.js';
import { eventually, startTestPipeline, type TestPipeline } from '../test/support/pipeline.js';
import { LOG_METRICS, logFilter, type LogMetricSpec } from './monitoring/log-metrics.js';

const sample = fs.readFileSync(new URL('../samples/flights-sample.csv', import.meta.url));
const bad = fs.readFileSync(new URL('../test/fixtures/bad/bad-timestamp.csv', import.meta.url));
const FAILURE_METRICS = new Set(['loader_failures', 'export_failures']);

const matches = (spec: LogMetricSpec, line: Record<string, unknown>): boolean =>
  typeof spec.message === 'string' ? line.message === spec.message : spec.message.test(String(line.message));

describe('the log lines the log-based metrics read', () => {
  const lines: Record<string, unknown>[] = [];
  let p: TestPipeline;
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _e, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    p = await startTestPipeline({ log: createLogger('info', sink) });
    const stored = await request(p.url).post('/upload').attach('file', sample, 'a.csv');
    expect(stored.status).toBe(201);
    expect((await request(p.url).post('/upload').attach('file', sample, 'a.csv')).status).toBe(200);
    expect((await request(p.url).post('/upload').attach('file', bad, 'bad.csv')).status).toBe(422);
    await eventually(async () => ((await request(p.url).get(`/uploads/${stored.body.uploadId}`)).body.status === 'loaded' ? true : undefined), 20_000, 'the load');
    // The flush counts itself (`flush done`) after it settled the file (`file loaded`).
    await eventually(async () => (lines.some((l) => l.message === 'file loaded') && lines.some((l) => l.message === 'flush done') ? true : undefined), 5_000, 'the loader’s lines');
  });
  afterAll(async () => {
    await p?.stop();
  });

  for (const spec of LOG_METRICS.filter((m) => !FAILURE_METRICS.has(m.id))) {
    it(`${spec.id}: lines "${spec.message}" carry ${spec.fields.join(', ') || 'no fields'}`, () => {
      const found = lines.filter((l) => matches(spec, l));
      expect(found.length, logFilter(spec)).toBeGreaterThan(0);
      for (const line of found) {
        for (const field of spec.fields) expect(line, `${spec.id}: ${field}`).toHaveProperty(field);
        if (spec.valueField) expect(typeof line[spec.valueField]).toBe('number');
      }
    });
  }

  it('uploads: one line per outcome, each labelled by the message', () => {
    const spec = LOG_METRICS.find((m) => m.id === 'uploads')!;
    const outcomes = lines.filter((l) => matches(spec, l)).map((l) => (spec.message as RegExp).exec(String(l.message))![1]);
    expect(outcomes.sort()).toEqual(['is a duplicate', 'rejected', 'stored']);
  });

  it('freshness: the loaded file’s line says how long after its upload it became queryable, and how many rows', () => {
    const line = lines.find((l) => l.message === 'file loaded' && l.status === 'loaded')!;
    expect(line.rows).toBeGreaterThan(0);
    expect(line.fromUploadSeconds).toBeGreaterThanOrEqual(0);
    expect(line.fromUploadSeconds).toBeLessThan(600);
  });

  it('the failure lines are logged where failures are handled', () => {
    const source = ['functions/loader/flush.ts', 'functions/exports/runner.ts', 'functions/ops/events.ts'].map((f) => fs.readFileSync(new URL(`../${f}`, import.meta.url), 'utf8')).join('\n');
    for (const spec of LOG_METRICS.filter((m) => FAILURE_METRICS.has(m.id))) {
      expect(source).toMatch(new RegExp(`log\\.error\\(\\{[^}]*\\}, '${spec.message}'\\)`));
    }
  });
});
