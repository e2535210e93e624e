import SwaggerParser from '@apidevtools/swagger-parser';
import fs from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { COLUMNS } from '../../functions/core/schema.js';
import { routesFromSpec, SPEC_PATH } from '../../functions/local/gateway.js';
import { withGetdataParameters } from '../../functions/query/openapi-params.js';

const text = fs.readFileSync(SPEC_PATH, 'utf8');

describe('openapi/openapi.yaml', () => {
  it('is a valid Swagger 2.0 document, as API Gateway requires', async () => {
    const api = await SwaggerParser.validate(parse(text));
    expect((api as { swagger?: string }).swagger).toBe('2.0');
  });

  it('routes every operation to a function through x-google-backend', () => {
    expect(routesFromSpec(text)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ method: 'post', path: '/upload', target: 'upload' }),
        expect.objectContaining({ method: 'get', path: '/uploads/{uploadId}', target: 'upload' }),
        expect.objectContaining({ method: 'get', path: '/getdata', target: 'getdata' }),
        expect.objectContaining({ method: 'post', path: '/uploads', target: 'uploads' }),
        expect.objectContaining({ method: 'post', path: '/exports', target: 'exports' }),
        expect.objectContaining({ method: 'get', path: '/exports/{exportId}', target: 'exports' }),
      ]),
    );
  });

  it('lists /getdata parameters derived from the current schema (run `npm run openapi` after a schema change)', () => {
    expect(withGetdataParameters(text)).toBe(text);
    const names = (parse(text).paths['/getdata'].get.parameters as { name: string }[]).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['select', 'order', 'limit', 'cursor', ...COLUMNS.map((c) => c.name), 'flight_date', '_source_line']));
  });

  it('refuses an operation with no function behind it', () => {
    expect(() => routesFromSpec('paths: {/x: {get: {x-google-backend: {address: "https://example.com"}}}}')).toThrow(/functions\./);
  });
});
