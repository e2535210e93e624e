import SwaggerParser from '@apidevtools/swagger-parser';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../functions/core/config.js';
import { HTTP_FUNCTIONS } from '../functions/core/topology.js';
import { SPEC_PATH } from '../functions/local/gateway.js';
import { backendTargets, DEFAULT_GATEWAY_DEADLINE_SECONDS, effectiveSecurity, gatewayProblems, operations, parseSpec, withBackends } from './api-spec.js';

const text = fs.readFileSync(SPEC_PATH, 'utf8');
const urls = Object.fromEntries(HTTP_FUNCTIONS.map((f) => [f, `https://${f.toLowerCase()}-abc123-uc.a.run.app`]));
const deadline = (path: string, method: 'get' | 'post') => parseSpec(text).paths[path]![method]!['x-google-backend']!.deadline!;

describe('openapi/openapi.yaml for API Gateway', () => {
  it('has nothing API Gateway would serve other than intended', () => {
    expect(gatewayProblems(parseSpec(text))).toEqual([]);
  });

  it('requires an API key, in the x-api-key header or the key query parameter, on every route but health', () => {
    const spec = parseSpec(text);
    expect(spec.securityDefinitions).toEqual({
      api_key: { type: 'apiKey', name: 'x-api-key', in: 'header' },
      api_key_query: { type: 'apiKey', name: 'key', in: 'query' },
    });
    for (const { path, operation } of operations(spec).filter((o) => o.path !== '/health')) {
      expect(effectiveSecurity(spec, operation), path).toEqual([{ api_key: [] }, { api_key_query: [] }]);
    }
  });

  it('gives the slow operations a deadline above the 15 s default: uploads as long as the upload timeout, queries as long as a BigQuery job', () => {
    const cloud = loadConfig({ PROFILE: 'cloud' });
    expect(deadline('/upload', 'post')).toBeGreaterThanOrEqual(cloud.ingest.requestTimeoutMs / 1000);
    expect(deadline('/getdata', 'get')).toBeGreaterThan(cloud.bigQuery.jobTimeoutMs / 1000);
    expect(deadline('/exports', 'post')).toBeGreaterThan(DEFAULT_GATEWAY_DEADLINE_SECONDS);
  });

  it('routes only to the HTTP functions, and validates as Swagger 2.0 with their URLs in place', async () => {
    expect(backendTargets(text)).toEqual([...HTTP_FUNCTIONS].sort());
    const deployed = withBackends(text, urls);
    expect(backendTargets(deployed)).toEqual([]);
    const spec = parseSpec(deployed);
    for (const { operation } of operations(spec)) expect(Object.values(urls)).toContain(operation['x-google-backend']!.address);
    await expect(SwaggerParser.validate(spec as never)).resolves.toBeTruthy();
  });

  it('refuses a spec that routes to a function with no URL', () => {
    const { getdata: _omitted, ...rest } = urls;
    expect(() => withBackends(text, rest)).toThrow(/functions\.getdata/);
  });

  it('reports an open route, a missing deadline and a quota on an undefined metric', () => {
    const spec = parseSpec(text);
    const upload = spec.paths['/upload']!.post!;
    upload.security = [];
    delete spec.paths['/schema']!.get!['x-google-backend']!.deadline;
    spec.paths['/getdata']!.get!['x-google-quota'] = { metricCosts: { 'no-such-metric': 1 } };
    expect(gatewayProblems(spec)).toEqual([
      'POST /upload: callable without an API key',
      `GET /schema: no explicit x-google-backend deadline (the default is ${DEFAULT_GATEWAY_DEADLINE_SECONDS} s)`,
      'GET /getdata: quota metric no-such-metric is not defined',
    ]);
  });
});
