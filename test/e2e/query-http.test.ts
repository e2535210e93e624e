import { parse } from 'csv-parse/sync';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightsCsv } from '../support/generate-flights.js';
import { expectedRows } from '../support/expected.js';
import { startTestPipeline, uploadLoaded, type TestPipeline } from '../support/pipeline.js';

const csv = flightsCsv(500, 7);
const all = expectedRows(csv);

describe('GET /getdata over HTTP', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline();
    await uploadLoaded(p, csv);
  });
  afterAll(() => p?.stop());

  it('walks every matching row once by following next links and Link headers', async () => {
    const want = all.filter((r) => r.origin === 'JFK').sort((a, b) => (b.dep_delay as number ?? Infinity) - (a.dep_delay as number ?? Infinity) || 0);
    const seen: Record<string, unknown>[] = [];
    let url: string | null = '/getdata?origin=eq.JFK&order=dep_delay.desc&select=id,dep_delay,origin&limit=17';
    while (url) {
      const res = await request(p.url).get(url);
      expect(res.status).toBe(200);
      if (res.body.next) expect(res.headers.link).toBe(`<${res.body.next}>; rel="next"`);
      seen.push(...res.body.rows);
      url = res.body.next;
    }
    expect(seen).toHaveLength(want.length);
    expect(new Set(seen.map((r) => r.id)).size).toBe(want.length);
    expect(seen.map((r) => r.dep_delay)).toEqual(want.map((r) => r.dep_delay));
  });

  it('returns CSV as an attachment with exactly the selected columns', async () => {
    const res = await request(p.url).get('/getdata?carrier=eq.UA&select=carrier,flight,tailnum&limit=1000').set('accept', 'text/csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="?flights.csv"?$/);
    const rows = parse(res.text, { columns: true }) as Record<string, string>[];
    const want = all.filter((r) => r.carrier === 'UA');
    expect(rows).toHaveLength(want.length);
    expect(Object.keys(rows[0]!)).toEqual(['carrier', 'flight', 'tailnum']);
    expect(rows.map((r) => r.tailnum)).toEqual(want.map((r) => r.tailnum ?? ''));
  });

  it('counts and aggregates', async () => {
    const res = await request(p.url).get('/getdata?select=carrier,count()&order=carrier&count=exact&limit=100');
    const want = new Map<string, number>();
    for (const r of all) want.set(r.carrier as string, (want.get(r.carrier as string) ?? 0) + 1);
    expect(res.body.rows).toEqual([...want].sort(([a], [b]) => a.localeCompare(b)).map(([carrier, count]) => ({ carrier, count })));
    expect(res.body.count).toBe(want.size);
  });

  it('refuses rather than truncates grouped results with more groups than limit', async () => {
    const carriers = new Set(all.map((r) => r.carrier)).size;
    expect(carriers).toBeGreaterThan(3);
    const res = await request(p.url).get('/getdata?select=carrier,count()&order=carrier&limit=3');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: '/problems/too-many-groups', parameter: 'limit', limit: 3, allowed: ['4..10000'] });
    expect(res.body.detail).toContain('POST /exports?select=carrier%2Ccount%28%29&order=carrier');
    const exact = await request(p.url).get(`/getdata?select=carrier,count()&limit=${carriers}`);
    expect([exact.status, exact.body.rows.length, exact.body.next]).toEqual([200, carriers, null]);
  });

  it('shows _loaded_at as an ISO 8601 instant in UTC and time_hour as uploaded', async () => {
    const res = await request(p.url).get('/getdata?select=time_hour,_loaded_at&limit=1');
    const [row] = res.body.rows;
    expect(row._loaded_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(Math.abs(Date.parse(row._loaded_at) - Date.now())).toBeLessThan(10 * 60_000);
    expect(row.time_hour).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:00:00$/);
    const csvPage = await request(p.url).get('/getdata?select=_loaded_at&limit=1&format=csv');
    expect(csvPage.text.split('\r\n')[1]).toBe(row._loaded_at);
  });

  it('names the offending parameter in a problem+json 400', async () => {
    const res = await request(p.url).get('/getdata?dep_delay=gt.soon');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.parameter).toBe('dep_delay');
  });

  it('refuses a second "?" rather than drop what follows it', async () => {
    for (const path of ['/getdata?carrier=eq.UA?limit=1', '/getdata?select=carrier&limit=5?origin=eq.JFK']) {
      const res = await request(p.url).get(path);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toContain('second "?"');
    }
    expect((await request(p.url).post('/exports?origin=eq.JFK?carrier=eq.UA')).status).toBe(400);
  });

  it('describes columns and operators at /schema', async () => {
    const res = await request(p.url).get('/schema');
    const tailnum = res.body.columns.find((c: { name: string }) => c.name === 'tailnum');
    expect(tailnum).toMatchObject({ type: 'string', nullable: true, kind: 'data' });
    expect(tailnum.operators).toContain('ilike');
    expect(res.body.columns.find((c: { name: string }) => c.name === 'distance').operators).not.toContain('like');
  });
});
