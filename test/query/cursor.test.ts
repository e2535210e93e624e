import { describe, expect, it } from 'vitest';
import { decodeCursor, nextCursor, pageCursor } from '../../functions/query/cursor.js';
import type { QuerySpec } from '../../functions/core/query-spec.js';
import { problemFrom } from './problems.js';

const SECRET = 'cursor-secret';
const spec: QuerySpec = {
  select: ['carrier'],
  filters: [
    { column: 'carrier', op: 'in', values: ['UA', 'AA'] },
    { column: 'dep_delay', op: 'gt', value: 0 },
  ],
  order: [
    { column: 'time_hour', direction: 'desc', nulls: 'first' },
    { column: '_source_generation', direction: 'asc', nulls: 'last' },
    { column: '_source_line', direction: 'asc', nulls: 'last' },
    { column: '_source_object', direction: 'asc', nulls: 'last' },
  ],
  limit: 2,
};
const row = { carrier: 'UA', time_hour: '2013-01-01 05:00:00', _source_object: 'o', _source_generation: '1712345678901234567', _source_line: 7 };
const token = nextCursor(spec, row, SECRET);
const refused = (t: string, s: Pick<QuerySpec, 'order' | 'filters'> = spec, secret = SECRET) => problemFrom(() => decodeCursor(t, s, secret));

describe('cursor', () => {
  it('round-trips the sort key of the last row, and is URL-safe', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(decodeCursor(token, spec, SECRET)).toEqual(['2013-01-01 05:00:00', '1712345678901234567', 7, 'o']);
  });

  it('carries NULL sort values', () => {
    expect(decodeCursor(nextCursor(spec, { ...row, time_hour: null }, SECRET), spec, SECRET)[0]).toBeNull();
  });

  it('accepts the same filters written in another order', () => {
    expect(decodeCursor(token, { ...spec, filters: [...spec.filters].reverse() }, SECRET)).toHaveLength(4);
  });

  it('is refused with another secret', () => {
    const p = refused(token, spec, 'other-secret');
    expect(p.status).toBe(400);
    expect(p.extensions.parameter).toBe('cursor');
    expect(p.detail).toContain('signature');
  });

  it('is refused when the payload is altered, even to a well-formed one', () => {
    const [body, tag] = token.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
    payload.a[3] = 1;
    const forged = `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${tag}`;
    expect(refused(forged).detail).toContain('signature');
    const flipped = `${body.slice(0, -1)}${body.endsWith('A') ? 'B' : 'A'}.${tag}`;
    expect(refused(flipped).detail).toContain('signature');
  });

  it('is refused when the signature is altered or truncated', () => {
    const [body, tag] = token.split('.') as [string, string];
    expect(refused(`${body}.${tag.slice(0, -2)}`).detail).toContain('signature');
    expect(refused(`${body}.${tag.startsWith('A') ? 'B' : 'A'}${tag.slice(1)}`).detail).toContain('signature');
  });

  it.each(['', 'abc', 'a.b.c', '.', `${token}.x`, '!!!.???'])('refuses the malformed %j', (t) => {
    expect(refused(t).extensions.parameter).toBe('cursor');
  });

  it('is refused for another order or other filters', () => {
    expect(refused(token, { ...spec, order: spec.order.slice(1) }).detail).toContain('different order');
    expect(refused(token, { ...spec, order: [{ ...spec.order[0]!, nulls: 'last' }, ...spec.order.slice(1)] }).detail).toContain('different order');
    expect(refused(token, { ...spec, filters: spec.filters.slice(1) }).detail).toContain('different filters');
    expect(refused(token, { ...spec, filters: [spec.filters[0]!, { column: 'dep_delay', op: 'gt', value: 1 }] }).detail).toContain('different filters');
  });

  it('is refused when the signed position does not fit the column types', () => {
    expect(refused(nextCursor(spec, { ...row, _source_line: 'seven' }, SECRET)).detail).toContain('does not fit');
    expect(refused(nextCursor(spec, { ...row, time_hour: 'noon' }, SECRET)).detail).toContain('does not fit');
  });

  it('is offered only after a full page, and never for aggregates', () => {
    expect(pageCursor(spec, [row, row], SECRET)).toBe(token);
    expect(pageCursor(spec, [row], SECRET)).toBeUndefined();
    expect(pageCursor(spec, [], SECRET)).toBeUndefined();
    const aggregate = { ...spec, aggregate: { groupBy: ['carrier'], measures: [{ fn: 'count' as const, column: null, alias: 'count' }] } };
    expect(pageCursor(aggregate, [row, row], SECRET)).toBeUndefined();
  });

  it('will not sign with an empty secret', () => {
    expect(() => nextCursor(spec, row, '')).toThrow(/secret/);
  });
});
