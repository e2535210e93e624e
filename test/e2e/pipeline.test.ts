import fs from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedRows } from '../support/expected.js';
import { eventually, PROFILES, profileEnv, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const sample = fs.readFileSync(new URL('../../samples/flights-sample.csv', import.meta.url), 'utf8');
const expected = expectedRows(sample);

describe.each(PROFILES)('the pipeline end to end over HTTP (%s profile)', (profile) => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline({ env: profileEnv(profile) });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('stores an upload, loads it, and serves exactly the file’s rows', async () => {
    const upload = await request(p.url).post('/upload').attach('file', Buffer.from(sample), 'flights-sample.csv');
    expect(upload.status).toBe(201);
    expect(upload.body).toMatchObject({ rows: expected.length, bytes: Buffer.byteLength(sample), status: 'stored' });
    expect(upload.body.object).toMatch(/^incoming\/\d{4}\/\d{2}\/\d{2}\/[0-9a-z]+\.csv$/);
    expect(upload.headers.location).toBe(`/uploads/${upload.body.uploadId}`);

    const status = await eventually(async () => {
      const res = await request(p.url).get(upload.headers.location!);
      return res.body.status === 'loaded' ? res.body : undefined;
    }, 20_000, 'the upload to load');
    expect(status).toMatchObject({ uploadId: upload.body.uploadId, loadedRows: expected.length, generation: upload.body.generation });

    const page = await request(p.url).get('/getdata').query({ limit: 1000 });
    expect(page.status).toBe(200);
    expect(page.body.rows).toEqual(expected);
  });

  it('answers the seed system’s default: the first 10 rows', async () => {
    const res = await request(p.url).get('/getdata');
    expect(res.status).toBe(200);
    expect(res.body.rows).toEqual(expected.slice(0, 10));
  });

  it('rejects an invalid file with a problem naming the line and column, and stores nothing', async () => {
    const bad = sample.replace(/\n(\d+),2013,(\d+),/, '\n$1,2013,13,');
    const res = await request(p.url).post('/upload').set('content-type', 'text/csv').send(bad);
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.errors[0]).toMatchObject({ line: 2, column: 3, field: 'month', value: '13' });
    const incoming = [];
    for await (const o of p.rt.store.list('incoming/')) incoming.push(o.name);
    expect(incoming).toHaveLength(1);
    const staging = [];
    for await (const o of p.rt.store.list('staging/')) staging.push(o.name);
    expect(staging).toEqual([]);
  });

  it('answers unknown routes and methods with problem+json, not HTML', async () => {
    const res = await request(p.url).get('/nope');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const wrongMethod = await request(p.url).delete('/upload');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    expect((await request(p.url).get('/uploads/0000000000000000000')).status).toBe(404);
  });

  it('keeps every row across a restart on the same data directory', async () => {
    await p.stop();
    p = await startTestPipeline({ dataDir: p.dataDir, env: p.env });
    const res = await request(p.url).get('/getdata').query({ limit: 1000 });
    expect(res.body.rows).toEqual(expected);
  });
});
