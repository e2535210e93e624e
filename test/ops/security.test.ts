/** Reading the spec's security and quotas as API Gateway does, and counting quota windows. */
import { describe, expect, it } from 'vitest';
import { QuotaCounter } from '../../functions/ops/rate-limit.js';
import { operationAccess, securitySchemes, type SpecAccessView } from '../../functions/ops/security.js';

const spec: SpecAccessView = {
  securityDefinitions: {
    api_key: { type: 'apiKey', name: 'X-API-Key', in: 'header' },
    api_key_query: { type: 'apiKey', name: 'key', in: 'query' },
  },
  security: [{ api_key: [] }, { api_key_query: [] }],
  'x-google-management': { quota: { limits: [{ name: 'per-minute', metric: 'requests', unit: '1/min/{project}', values: { STANDARD: 2 } }] } },
};

describe('spec security', () => {
  it('reads alternatives from the document, an operation overriding them, and `security: []` or `{}` as public', () => {
    expect(operationAccess(spec, {}, 'GET /a').alternatives).toEqual([['api_key'], ['api_key_query']]);
    expect(operationAccess(spec, { security: [{ api_key: [], api_key_query: [] }] }, 'GET /b').alternatives).toEqual([['api_key', 'api_key_query']]);
    expect(operationAccess(spec, { security: [] }, 'GET /health').alternatives).toEqual([]);
    expect(operationAccess(spec, { security: [{ api_key: [] }, {}] }, 'GET /c').alternatives).toEqual([]);
    expect(operationAccess({}, {}, 'GET /d').alternatives).toEqual([]);
  });

  it('header names compare case-insensitively, as HTTP headers do', () => {
    expect(securitySchemes(spec).api_key).toEqual({ kind: 'apiKey', name: 'x-api-key', in: 'header' });
  });

  it('refuses what it cannot enforce rather than leaving the route open', () => {
    expect(() => operationAccess(spec, { security: [{ nope: [] }] }, 'GET /e')).toThrow(/nope/);
    expect(() => securitySchemes({ securityDefinitions: { basic: { type: 'basic' } } })).toThrow(/basic/);
    expect(() => securitySchemes({ securityDefinitions: { jwt: { type: 'oauth2', 'x-google-issuer': 'https://i' } } })).toThrow(/jwks_uri/);
  });

  it('takes quota costs from x-google-quota and limits from x-google-management', () => {
    expect(operationAccess(spec, { 'x-google-quota': { metricCosts: { requests: 1 } } }, 'POST /upload').quotas).toEqual([
      { limit: 'per-minute', metric: 'requests', perWindow: 2, windowSeconds: 60, cost: 1 },
    ]);
    expect(operationAccess(spec, {}, 'GET /a').quotas).toEqual([]);
  });
});

describe('quota windows', () => {
  const quota = { limit: 'per-minute', metric: 'requests', perWindow: 2, windowSeconds: 60, cost: 1 };

  it('allows perWindow calls per calendar minute per consumer, then says how long until the next minute', () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 15);
    const counter = new QuotaCounter(() => now);
    expect(counter.spend('a', [quota]).allowed).toBe(true);
    expect(counter.spend('a', [quota]).allowed).toBe(true);
    expect(counter.spend('a', [quota])).toMatchObject({ allowed: false, retryAfterSeconds: 45 });
    expect(counter.spend('b', [quota]).allowed).toBe(true);
    now += 44_500;
    expect(counter.spend('a', [quota])).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    now += 500;
    expect(counter.spend('a', [quota]).allowed).toBe(true);
  });

  it('spends nothing when one of several limits refuses', () => {
    const counter = new QuotaCounter(() => 0);
    const tight = { ...quota, limit: 'tight', perWindow: 1 };
    expect(counter.spend('a', [quota, tight]).allowed).toBe(true);
    expect(counter.spend('a', [quota, tight]).allowed).toBe(false);
    expect(counter.spend('a', [quota]).allowed).toBe(true);
    expect(counter.spend('a', [quota]).allowed).toBe(false);
  });
});
