/**
 * What the local gateway offers around the API: HEAD wherever GET is answered,
 * GET /health, the API reference at /docs served from this machine, optional
 * CORS, and resumable sessions whose Location a client can use as it is.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSignedUpload } from '../../tools/upload-client.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const APP_ORIGIN = 'http://app.example';

describe('the local gateway', () => {
  let p: TestPipeline;

  beforeAll(async () => {
    p = await startTestPipeline({ env: { CORS_ORIGINS: `${APP_ORIGIN}, http://other.example` } });
  });
  afterAll(() => p?.stop());

  it('answers HEAD wherever it answers GET, with the same status and headers and no body', async () => {
    for (const path of ['/getdata?limit=1&format=csv', '/schema', '/health', '/uploads/00000000000000000000000000000000']) {
      const [get, head] = [await request(p.url).get(path), await request(p.url).head(path)];
      expect(head.status, path).toBe(get.status);
      expect(head.headers['content-type'], path).toBe(get.headers['content-type']);
      expect(head.text ?? '', path).toBe('');
    }
    expect((await request(p.url).get('/getdata?limit=1')).status).toBe(200);
  });

  it('reports readiness of store, bus and warehouse at /health', async () => {
    const res = await request(p.url).get('/health');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ status: 'ok', checks: { store: { status: 'ok' }, bus: { status: 'ok' }, warehouse: { status: 'ok' } } });
  });

  it('serves browsable API docs from the OpenAPI document, with every asset served locally', async () => {
    const page = await request(p.url).get('/docs/').redirects(1);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).not.toMatch(/src="https?:|href="https?:/);
    const init = await request(p.url).get('/docs/swagger-ui-init.js');
    expect(init.status).toBe(200);
    expect(init.text).toContain('"/getdata"');
    expect(init.text).not.toContain('"schemes"');
    const bundle = await request(p.url).get('/docs/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
  });

  it('answers CORS preflights and requests from the configured origins only', async () => {
    const preflight = await request(p.url).options('/getdata').set('Origin', APP_ORIGIN).set('Access-Control-Request-Method', 'GET');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    const get = await request(p.url).get('/getdata?limit=1').set('Origin', APP_ORIGIN);
    expect(get.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(get.headers['access-control-expose-headers']).toContain('Link');
    const stranger = await request(p.url).get('/getdata?limit=1').set('Origin', 'http://evil.example');
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('gives a resumable session an absolute Location, as GCS does', async () => {
    const signed = await requestSignedUpload(p.url, { fileName: 'x.csv', size: 10, contentType: 'text/csv' });
    const res = await fetch(signed.upload.url, { method: 'POST', headers: signed.upload.headers });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${p.url}/storage/sessions/[0-9a-f]+$`));
  });
});

describe('the local gateway without CORS_ORIGINS', () => {
  let p: TestPipeline;

  beforeAll(async () => {
    p = await startTestPipeline();
  });
  afterAll(() => p?.stop());

  it('sends no CORS headers', async () => {
    const get = await request(p.url).get('/getdata?limit=1').set('Origin', APP_ORIGIN);
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('reports a warehouse that stopped answering as 503, naming it', async () => {
    await p.rt.warehouse.close();
    const res = await request(p.url).get('/health');
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('failing');
    expect(res.body.checks.store).toEqual({ status: 'ok' });
    expect(res.body.checks.warehouse.status).toBe('failing');
  });
});
