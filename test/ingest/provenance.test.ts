/** What an upload leaves for later: object metadata, and a log line for its start and its end, joined to the trace. */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger } from '../support/capturing-logger.js';
import { flightsCsv } from '../support/generate-flights.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { multipart, send } from './http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

describe('upload provenance', () => {
  it('records sha256, rows, the sanitized name, the content type and the gateway-verified uploader on the object', async () => {
    p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: 'ana:ana-secret' } });
    const csv = flightsCsv(12, 8);
    const form = multipart([{ fileName: '..\\..\\secret/flights.csv', contentType: 'application/vnd.ms-excel', data: csv }]);
    // A client cannot name itself: the gateway drops identity headers it did not set.
    const spoofed = Buffer.from(JSON.stringify({ sub: 'u-1', email: 'mallory@example.com' })).toString('base64url');
    const res = await send(p.url, form.body, {
      'content-type': form.contentType,
      'x-api-key': 'ana-secret',
      'x-apigateway-api-userinfo': spoofed,
      'x-goog-authenticated-user-email': 'accounts.google.com:mallory@example.com',
    });
    expect(res.status).toBe(201);
    expect(res.body.object).toMatch(/^incoming\/\d{4}\/\d{2}\/\d{2}\/[0-9a-z]{19}\.csv$/);
    const info = (await p.rt.store.stat(res.body.object))!;
    expect(info.metadata).toEqual({
      uploadId: res.body.uploadId,
      sha256: createHash('sha256').update(csv).digest('hex'),
      rows: '12',
      bytes: String(Buffer.byteLength(csv)),
      originalName: 'flights.csv',
      originalContentType: 'application/vnd.ms-excel',
      uploader: 'key:ana',
    });
    expect(res.body.sha256).toBe(info.metadata.sha256);
    expect((await p.rt.ledger.get(res.body.uploadId))?.uploader).toBe('key:ana');
  });

  it('logs start, completion and rejection with the upload id, Cloud Logging fields and the trace', async () => {
    const { log, lines } = capturingLogger();
    p = await startTestPipeline({ log, env: { GOOGLE_CLOUD_PROJECT: 'demo' } });
    const trace = '105445aa7843bc8bf206b12000100000';
    const ok = await send(p.url, flightsCsv(5, 10), { 'x-cloud-trace-context': `${trace}/1;o=1`, 'user-agent': 'test-agent' });
    const bad = await send(p.url, 'year\n2013\n', { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
    expect([ok.status, bad.status]).toEqual([201, 422]);

    const of = (message: string) => lines.filter((l) => l.message === message);
    const [started] = of('upload started').filter((l) => l.uploadId === ok.body.uploadId);
    expect(started).toMatchObject({
      severity: 'INFO',
      'logging.googleapis.com/trace': `projects/demo/traces/${trace}`,
      'logging.googleapis.com/spanId': '1',
      'logging.googleapis.com/trace_sampled': true,
      httpRequest: { requestMethod: 'POST', requestUrl: '/upload', userAgent: 'test-agent' },
    });
    const [completed] = of('upload completed');
    expect(completed).toMatchObject({ uploadId: ok.body.uploadId, httpRequest: { status: 201, requestSize: expect.any(String), latency: expect.stringMatching(/^\d+\.\d{3}s$/) } });
    expect(of('upload stored')[0]).toMatchObject({ uploadId: ok.body.uploadId, upload: { object: ok.body.object, rows: 5 } });

    const [rejected] = of('upload rejected');
    expect(rejected).toMatchObject({
      severity: 'INFO',
      uploadId: expect.stringMatching(/^[0-9a-z]{19}$/),
      problem: 'invalid-csv',
      'logging.googleapis.com/trace': `projects/demo/traces/${'a'.repeat(32)}`,
      httpRequest: { status: 422 },
    });
    expect(of('upload started').map((l) => l.uploadId)).toContain(rejected!.uploadId);
  });
});
