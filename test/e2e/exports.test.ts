import fs from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCanonicalFlights } from '../support/flight-files.js';
import { parse as parseCsv } from 'csv-parse/sync';
import { QUERYABLE_COLUMNS } from '../../functions/core/schema.js';
import { exportedCells, exportedRows, pagedRows, runExport, sameRows } from '../support/exports.js';
import { flightsCsv, KAGGLE_HEADER } from '../support/generate-flights.js';
import { startTestPipeline, tempDir, uploadLoaded, type TestPipeline } from '../support/pipeline.js';

const MILLION = 1_000_000;

describe('POST /exports against GET /getdata, one million rows', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline();
    // Straight into the warehouse: this suite is about reading a large table back, not about ingest.
    const file = path.join(await tempDir('flights-1m-'), 'canonical.csv');
    await writeCanonicalFlights(file, MILLION, 11);
    const [outcome] = await p.rt.warehouse.load([{ object: 'incoming/test/million.csv', generation: '1', uri: file }]);
    await fs.rm(path.dirname(file), { recursive: true });
    expect(outcome?.rows).toBe(MILLION);
  }, 120_000);
  afterAll(() => p?.stop());

  it('exports exactly the rows, in the order, that paginating /getdata returns', async () => {
    // The default order (the rows' lineage) keeps each of the 100 page queries cheap; a custom sort is compared below on fewer rows.
    const query = 'select=id,carrier,dep_delay,tailnum,time_hour,distance';
    const done = await runExport(p.url, query, 120_000);
    expect(done).toMatchObject({ status: 'done', rows: MILLION, columns: ['id', 'carrier', 'dep_delay', 'tailnum', 'time_hour', 'distance'] });
    expect(done.files?.[0]?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/storage\/signed\//);
    expect(await sameRows(exportedRows(done.files!), pagedRows(p.url, `/getdata?${query}&limit=10000`), done.columns)).toBe(MILLION);
  }, 300_000);
});

describe('exports and the inline cap', () => {
  const csv = flightsCsv(2_000, 5);
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline({ env: { MAX_INLINE_RESPONSE_BYTES: '50000' } });
    await uploadLoaded(p, csv);
  });
  afterAll(() => p?.stop());

  it('refuses a page over the cap with a 413 problem pointing to the same query as an export, never a cut body', async () => {
    for (const format of ['json', 'csv', 'ndjson']) {
      const res = await request(p.url).get(`/getdata?carrier=in.(UA,AA,B6,DL)&limit=2000&format=${format}`);
      expect(res.status).toBe(413);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: '/problems/response-too-large', maxBytes: 50_000, export: { method: 'POST', href: '/exports?carrier=in.%28UA%2CAA%2CB6%2CDL%29' } });
    }
    // A page under the cap is unaffected.
    expect((await request(p.url).get('/getdata?limit=100')).status).toBe(200);
  });

  it('the export the 413 points to holds every matching row', async () => {
    const refused = await request(p.url).get('/getdata?carrier=in.(UA,AA,B6,DL)&limit=2000');
    const done = await runExport(p.url, refused.body.export.href.split('?')[1]);
    const carriers = csv.split('\n').slice(1).filter(Boolean).map((line) => line.split(',')[10]);
    expect(done.rows).toBe(carriers.filter((c) => ['UA', 'AA', 'B6', 'DL'].includes(c!)).length);
    let seen = 0;
    for await (const row of exportedRows(done.files!)) {
      expect(['UA', 'AA', 'B6', 'DL']).toContain(row.carrier);
      seen += 1;
    }
    expect(seen).toBe(done.rows);
  });

  it('exports a custom sort in the order its keyset pages come in', async () => {
    const query = 'select=id,dep_delay,tailnum,time_hour&order=dep_delay.desc,tailnum.nullsfirst&carrier=neq.UA';
    const done = await runExport(p.url, query);
    expect(await sameRows(exportedRows(done.files!), pagedRows(p.url, `/getdata?${query}&limit=97`), done.columns)).toBe(done.rows);
  });

  it('exports aggregates with the columns in the order asked for, and honours an explicit limit', async () => {
    const done = await runExport(p.url, 'select=n:count(),carrier&order=carrier&limit=3');
    expect(done).toMatchObject({ status: 'done', rows: 3, columns: ['n', 'carrier'] });
    const rows = [];
    for await (const row of exportedRows(done.files!)) rows.push(row);
    // GET /getdata refuses to cut groups off at a limit: it is asked for all of them.
    const page = await request(p.url).get('/getdata?select=n:count(),carrier&order=carrier&limit=10000');
    expect(rows.map((r) => ({ n: Number(r.n), carrier: r.carrier }))).toEqual(page.body.rows.slice(0, 3));
    expect(Object.keys(rows[0]!)).toEqual(['n', 'carrier']);
  });

  it('refuses what only a page has, and unknown exports, with problem+json', async () => {
    for (const [query, parameter] of [
      ['cursor=abc', 'cursor'],
      ['count=exact', 'count'],
      ['format=ndjson', 'format'],
      ['dep_delay=gt.soon', 'dep_delay'],
    ]) {
      const res = await request(p.url).post(`/exports?${query}`);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.parameter).toBe(parameter);
    }
    expect((await request(p.url).get('/exports/nope')).status).toBe(404);
    expect((await request(p.url).delete('/exports/nope')).status).toBe(405);
  });

  it('serves downloads only through an intact, unexpired signature (403 problem+json otherwise)', async () => {
    const done = await runExport(p.url, 'select=id&limit=5');
    const url = new URL(done.files![0]!.url);
    expect((await fetch(url)).status).toBe(200);

    const edited = new URL(url);
    edited.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    const otherObject = new URL(url.href.replace(/\/000000000000\.csv\.gz\?/, '/000000000001.csv.gz?'));
    const badSignature = new URL(url);
    badSignature.searchParams.set('signature', '00'.repeat(32));
    for (const tampered of [edited, otherObject, badSignature]) {
      const res = await fetch(tampered);
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { type: string }).type).toBe('/problems/signature-mismatch');
    }
    expect((await fetch(url, { method: 'POST' })).status).toBe(403);

    const name = `exports/${done.exportId}/000000000000.csv.gz`;
    const expired = await p.rt.store.signedUrl(name, { action: 'read', expiresAt: new Date(Date.now() - 1000) });
    const res = await fetch(expired.url);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { type: string }).type).toBe('/problems/url-expired');
  });
});

describe('one cell format: an export and GET /getdata?format=csv write the same text', () => {
  // Every column type, NULLs (empty and NA), negative and fractional numbers, integral numbers written with .0,
  // fractional seconds, a T separator, and text that needs quoting.
  const csv = [
    KAGGLE_HEADER,
    '1,2013,6,2,853,855,-2.0,1115,1114,-2.5,UA,266,N506DL,EWR,ORD,114,719,8,55,2013-06-02 08:00:00,United Air Lines Inc.',
    '2,2013,6,2,,900,NA,,1130,,B6,838,,JFK,MIA,,1089.25,9,0,2013-06-02 09:00:00.500,"JetBlue, ""the"" Airways"',
    ',2013,12,31,2400,2359,0.1,5,10,-0.0,AA,1,N1,LGA,BOS,40.5,187,23,59,2013-12-31T23:59,',
  ].join('\r\n');
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline();
    await uploadLoaded(p, csv);
  });
  afterAll(() => p?.stop());

  it('cell by cell, for every queryable column', async () => {
    const query = `select=${[...QUERYABLE_COLUMNS.keys()].join(',')}&order=flight`;
    const page = await request(p.url).get(`/getdata?${query}&format=csv&limit=10`);
    expect(page.status).toBe(200);
    const paged = parseCsv(page.text) as string[][];
    const done = await runExport(p.url, query);
    expect(done).toMatchObject({ status: 'done', rows: 3 });
    const exported = await exportedCells(done.files!);
    expect(exported).toEqual(paged);

    // What the rows say, as a user reads them.
    const rows = paged.slice(1).map((cells) => Object.fromEntries(paged[0]!.map((c, i) => [c, cells[i]])));
    expect(rows.map((r) => [r.id, r.dep_delay, r.arr_delay, r.distance, r.time_hour, r.tailnum, r.name])).toEqual([
      ['', '0.1', '0', '187', '2013-12-31 23:59:00', 'N1', ''],
      ['1', '-2', '-2.5', '719', '2013-06-02 08:00:00', 'N506DL', 'United Air Lines Inc.'],
      ['2', '', '', '1089.25', '2013-06-02 09:00:00.5', '', 'JetBlue, "the" Airways'],
    ]);
    for (const r of rows) {
      expect(r.flight_date).toMatch(/^2013-\d{2}-\d{2}$/);
      expect(r._loaded_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    }
  });
});
