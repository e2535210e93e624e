/**
 * The local gateway enforces what openapi/openapi.yaml declares: every route
 * × every kind of caller, the key in the header and in the query, JWTs
 * verified against a JWKS served on loopback, quotas, AUTH=off, and the
 * caller's identity reaching the upload.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { routesFromSpec, SPEC_PATH, type Route } from '../../functions/local/gateway.js';
import { flightsCsv } from '../support/generate-flights.js';
import { closeLoopback, listenLoopback } from '../support/loopback.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const ISSUER = 'https://issuer.flights.test';
const AUDIENCE = 'flights-api';
const KEY = 'good-key-0123456789';

/** The real spec, plus a Google-style JWT scheme accepted as one more alternative wherever a key is. */
function specWithJwt(jwksUri: string): string {
  const spec = parse(fs.readFileSync(SPEC_PATH, 'utf8'));
  spec.securityDefinitions.google_jwt = {
    type: 'oauth2',
    authorizationUrl: '',
    flow: 'implicit',
    'x-google-issuer': ISSUER,
    'x-google-jwks_uri': jwksUri,
    'x-google-audiences': AUDIENCE,
  };
  spec.security.push({ google_jwt: [] });
  return stringify(spec);
}

const concrete = (route: Route): string => route.path.replace(/\{\w+\}/g, 'aaaaaaaaa0000000000');

let jwks: http.Server;
let signing: CryptoKey;
let forger: CryptoKey;
let spec: string;

async function token(claims: Record<string, unknown>, key = signing, expiresIn = '5m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(expiresIn).sign(key);
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signing = pair.privateKey;
  forger = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const served = await listenLoopback((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  jwks = served.server;
  spec = specWithJwt(`${served.endpoint}/jwks.json`);
});
afterAll(() => closeLoopback(jwks));

describe('access control as the spec declares it', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: `tester:${KEY}` }, specText: spec });
  });
  afterAll(() => p.stop());

  const call = (route: Route, headers: Record<string, string> = {}, query = ''): Promise<Response> =>
    fetch(`${p.url}${concrete(route)}${query}`, { method: route.method.toUpperCase(), headers: { 'content-type': 'text/csv', ...headers }, ...(route.method === 'get' ? {} : { body: '' }) });

  const routes = routesFromSpec(fs.readFileSync(SPEC_PATH, 'utf8'));
  const isHealth = (r: Route): boolean => /health/.test(r.path);

  it('the spec protects every route but health', () => {
    const unprotected = routesFromSpec(spec).filter((r) => r.access.alternatives.length === 0);
    expect(unprotected.filter((r) => !isHealth(r))).toEqual([]);
    expect(routes.filter((r) => !isHealth(r)).length).toBeGreaterThanOrEqual(6);
  });

  for (const route of routes.filter((r) => !isHealth(r))) {
    describe(`${route.method.toUpperCase()} ${route.path}`, () => {
      const refused = async (res: Response, status: number, type: string): Promise<void> => {
        expect(res.status).toBe(status);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(await res.json()).toMatchObject({ status, type });
      };
      const admitted = async (res: Response): Promise<void> => {
        // Past the gateway: whatever the function answers to an empty request, never an access refusal or a fault.
        expect([401, 403, 429]).not.toContain(res.status);
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
      };
      it('no credential → 401', async () => refused(await call(route), 401, '/problems/unauthenticated'));
      it('unknown key → 403 (header and query)', async () => {
        await refused(await call(route, { 'x-api-key': 'not-a-key' }), 403, '/problems/forbidden');
        await refused(await call(route, {}, '?key=not-a-key'), 403, '/problems/forbidden');
      });
      it('good key → admitted (header and query)', async () => {
        await admitted(await call(route, { 'x-api-key': KEY }));
        await admitted(await call(route, {}, `?key=${KEY}`));
      });
      it('forged JWT → 401', async () => refused(await call(route, { authorization: `Bearer ${await token({ sub: 'eve' }, forger)}` }), 401, '/problems/invalid-token'));
      it('expired JWT → 401', async () => {
        const expired = await new SignJWT({ sub: 'ana' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(signing);
        await refused(await call(route, { authorization: `Bearer ${expired}` }), 401, '/problems/invalid-token');
      });
      it('good JWT → admitted', async () => admitted(await call(route, { authorization: `Bearer ${await token({ sub: 'ana' })}` })));
    });
  }

  it('a JWT for another audience or issuer is refused', async () => {
    const other = await new SignJWT({ sub: 'ana' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience('someone-else').setExpirationTime('5m').sign(signing);
    const res = await fetch(`${p.url}/getdata`, { headers: { authorization: `Bearer ${other}` } });
    expect(res.status).toBe(401);
  });

  it('the caller reaches the object metadata, the upload record and GET /uploads/{id}; a client-sent identity does not', async () => {
    const spoof = Buffer.from(JSON.stringify({ email: 'mallory@example.com' })).toString('base64url');
    const byJwt = await fetch(`${p.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv', authorization: `Bearer ${await token({ sub: 'u-42', email: 'ana@example.com' })}`, 'x-apigateway-api-userinfo': spoof },
      body: flightsCsv(3, 1),
    });
    expect(byJwt.status).toBe(201);
    const stored = (await byJwt.json()) as { uploadId: string; object: string };
    expect((await p.rt.store.stat(stored.object))!.metadata.uploader).toBe('ana@example.com');
    const record = await fetch(`${p.url}/uploads/${stored.uploadId}?key=${KEY}`);
    expect(await record.json()).toMatchObject({ uploadId: stored.uploadId, uploader: 'ana@example.com' });

    const byKey = await fetch(`${p.url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv', 'x-api-key': KEY, 'x-goog-authenticated-user-email': 'accounts.google.com:mallory@example.com' }, body: flightsCsv(3, 2) });
    const keyed = (await byKey.json()) as { uploadId: string };
    expect(await (await fetch(`${p.url}/uploads/${keyed.uploadId}`, { headers: { 'x-api-key': KEY } })).json()).toMatchObject({ uploader: 'key:tester' });
  });
});

describe('quota', () => {
  it('answers 429 with Retry-After past the per-minute quota, per caller, as the spec declares it', async () => {
    // The real spec's quota, shrunk to 3 calls a minute; /getdata made free to show a route without a cost spends nothing.
    const doc = parse(fs.readFileSync(SPEC_PATH, 'utf8'));
    for (const limit of doc['x-google-management'].quota.limits) limit.values.STANDARD = 3;
    expect(doc.paths['/schema'].get['x-google-quota']).toBeDefined();
    delete doc.paths['/getdata'].get['x-google-quota'];
    const p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: 'a:key-a,b:key-b' }, specText: stringify(doc) });
    try {
      const get = (key: string) => fetch(`${p.url}/schema`, { headers: { 'x-api-key': key } });
      // Within one window the 4th call is refused; if a minute turns over meanwhile, the 4th of the new one is.
      let over: Response | undefined;
      for (let i = 0; i < 8 && !over; i++) {
        const res = await get('key-a');
        if (res.status === 429) over = res;
        else expect(res.status).toBe(200);
      }
      expect(over?.status).toBe(429);
      if (!over) return;
      expect(over.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const retryAfter = Number(over.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect((await get('key-b')).status).toBe(200);
      // Routes without a cost in the spec spend nothing.
      expect((await fetch(`${p.url}/getdata?limit=1`, { headers: { 'x-api-key': 'key-a' } })).status).toBe(200);
    } finally {
      await p.stop();
    }
  });
});

describe('AUTH=off', () => {
  it('lets every call in, and still drops client-sent identity', async () => {
    const p = await startTestPipeline({ env: { AUTH: 'off' } });
    try {
      expect((await fetch(`${p.url}/getdata?limit=1`)).status).toBe(200);
      const res = await fetch(`${p.url}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'text/csv', 'x-goog-authenticated-user-email': 'accounts.google.com:mallory@example.com' },
        body: flightsCsv(2, 3),
      });
      expect(res.status).toBe(201);
      const { uploadId } = (await res.json()) as { uploadId: string };
      expect((await p.rt.ledger.get(uploadId))?.uploader).toBeUndefined();
    } finally {
      await p.stop();
    }
  });
});

describe('credentials in the query string', () => {
  it('reach the function, as API Gateway forwards them, and the query grammar ignores them', async () => {
    const p = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: `q:${KEY}` } });
    try {
      const page = await fetch(`${p.url}/getdata?key=${KEY}&limit=1&carrier=eq.AA`);
      expect(page.status).toBe(200);
      const exported = await fetch(`${p.url}/exports?key=${KEY}&carrier=eq.AA`, { method: 'POST' });
      expect(exported.status).toBe(202);
      await exported.arrayBuffer();
    } finally {
      await p.stop();
    }
  });
});
