/**
 * The ingest function under the real functions-framework, where body-parser
 * has already read (and, for Content-Encoding: gzip, inflated) the body into
 * req.rawBody before the handler runs.
 */
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightsCsv } from '../support/generate-flights.js';
import { tempDir } from '../support/pipeline.js';

describe('upload under @google-cloud/functions-framework', () => {
  let server: () => import('node:http').Server;
  beforeAll(async () => {
    process.env.DATA_DIR = await tempDir();
    process.env.LOG_LEVEL = 'silent';
    await import('../../functions/index.js');
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    server = () => getTestServer('upload');
  });
  afterAll(() => {
    delete process.env.DATA_DIR;
  });

  it('stores a gzip-coded body as CSV (the framework inflated it already)', async () => {
    const csv = flightsCsv(40, 21);
    const res = await request(server()).post('/upload').set({ 'content-type': 'text/csv', 'content-encoding': 'gzip' }).send(gzipSync(csv));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ rows: 40, bytes: Buffer.byteLength(csv) });
  });

  it('stores a .csv.gz part (the framework leaves multipart alone)', async () => {
    const res = await request(server()).post('/upload').attach('file', gzipSync(flightsCsv(7, 22)), { filename: 'f.csv.gz', contentType: 'application/gzip' });
    expect(res.status).toBe(201);
    expect(res.body.rows).toBe(7);
  });

  it('answers an invalid file with 422 and the fault located', async () => {
    const csv = flightsCsv(3, 23).replace(/\n(\d+),2013,\d+,/, '\n$1,2013,0,');
    const res = await request(server()).post('/upload').attach('file', Buffer.from(csv), 'bad.csv');
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.errors[0]).toMatchObject({ line: 2, column: 3, field: 'month', value: '0' });
    expect(res.body.file).toBe('bad.csv');
  });
});
