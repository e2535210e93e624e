import { describe, expect, it } from 'vitest';
import { parseQuery, type ParsedQuery } from '../../functions/query/grammar.js';
import { nextCursor } from '../../functions/query/cursor.js';
import { COLUMNS } from '../../functions/core/schema.js';
import { problemFrom } from './problems.js';

const SECRET = 'grammar-secret';
const parse = (qs: string, maxLimit?: number): ParsedQuery => parseQuery(new URLSearchParams(qs), { cursorSecret: SECRET, maxLimit });
const filters = (qs: string) => parse(qs).spec.filters;
const problem = (qs: string) => problemFrom(() => parse(qs));
const TIEBREAKER = [
  { column: '_source_generation', direction: 'asc', nulls: 'last' },
  { column: '_source_line', direction: 'asc', nulls: 'last' },
  { column: '_source_object', direction: 'asc', nulls: 'last' },
];

describe('filters', () => {
  it.each([
    ['carrier=eq.UA', { column: 'carrier', op: 'eq', value: 'UA' }],
    ['month=neq.3', { column: 'month', op: 'neq', value: 3 }],
    ['dep_delay=gt.-2.5', { column: 'dep_delay', op: 'gt', value: -2.5 }],
    ['distance=gte.1e3', { column: 'distance', op: 'gte', value: 1000 }],
    ['time_hour=lt.2013-01-02 05:00:00', { column: 'time_hour', op: 'lt', value: '2013-01-02 05:00:00' }],
    ['time_hour=lte.2013-01-02T05:00:00', { column: 'time_hour', op: 'lte', value: '2013-01-02 05:00:00' }],
    ['flight_date=eq.2012-02-29', { column: 'flight_date', op: 'eq', value: '2012-02-29' }],
    ['tailnum=like.N1*2*', { column: 'tailnum', op: 'like', value: 'N1%2%' }],
    ['name=ilike.*inc.', { column: 'name', op: 'ilike', value: '%inc.' }],
    ['carrier=in.(UA,AA)', { column: 'carrier', op: 'in', values: ['UA', 'AA'] }],
    ['name=in.("Foo, Inc.","a \\"b\\" \\\\ (c)",x y)', { column: 'name', op: 'in', values: ['Foo, Inc.', 'a "b" \\ (c)', 'x y'] }],
    ['month=in.()', { column: 'month', op: 'in', values: [] }],
    ['name=in.("")', { column: 'name', op: 'in', values: [''] }],
    ['dep_time=is.null', { column: 'dep_time', op: 'is_null' }],
    ['dep_time=is.not_null', { column: 'dep_time', op: 'not_null' }],
    ['carrier=eq.', { column: 'carrier', op: 'eq', value: '' }],
    ['tailnum=eq.N1.2', { column: 'tailnum', op: 'eq', value: 'N1.2' }],
    [`_source_generation=eq.1712345678901234567`, { column: '_source_generation', op: 'eq', value: '1712345678901234567' }],
  ])('%s', (qs, filter) => {
    expect(filters(qs)).toEqual([filter]);
  });

  it.each([
    ['not.eq.1', 'neq', 1],
    ['not.neq.1', 'eq', 1],
    ['not.gt.1', 'lte', 1],
    ['not.gte.1', 'lt', 1],
    ['not.lt.1', 'gte', 1],
    ['not.lte.1', 'gt', 1],
  ])('month=%s negates to %s', (text, op, value) => {
    expect(filters(`month=${text}`)).toEqual([{ column: 'month', op, value }]);
  });

  it.each([
    ['tailnum=not.like.N*', { column: 'tailnum', op: 'not_like', value: 'N%' }],
    ['tailnum=not.ilike.n*', { column: 'tailnum', op: 'not_ilike', value: 'n%' }],
    ['carrier=not.in.(UA)', { column: 'carrier', op: 'not_in', values: ['UA'] }],
    ['dep_time=not.is.null', { column: 'dep_time', op: 'not_null' }],
    ['dep_time=not.is.not_null', { column: 'dep_time', op: 'is_null' }],
  ])('%s', (qs, filter) => {
    expect(filters(qs)).toEqual([filter]);
  });

  it('ANDs repeated filters on one column, and from/to become an inclusive flight_date range', () => {
    expect(filters('dep_delay=gt.0&dep_delay=lt.60&from=2013-01-01&to=2013-01-31')).toEqual([
      { column: 'dep_delay', op: 'gt', value: 0 },
      { column: 'dep_delay', op: 'lt', value: 60 },
      { column: 'flight_date', op: 'gte', value: '2013-01-01' },
      { column: 'flight_date', op: 'lte', value: '2013-01-31' },
    ]);
  });

  it.each([
    ['month=eq.1.5', 'month', 'an integer'],
    ['month=eq.99999999999999999999', 'month', 'an integer'],
    ['month=in.(1,x)', 'month', 'an integer'],
    ['dep_delay=gt.abc', 'dep_delay', 'a decimal number'],
    ['dep_delay=gt.NaN', 'dep_delay', 'a decimal number'],
    ['dep_delay=gt.Infinity', 'dep_delay', 'a decimal number'],
    ['time_hour=eq.2013-13-01 00:00:00', 'time_hour', 'a timestamp'],
    ['time_hour=eq.2013-01-01 24:00:00', 'time_hour', 'a timestamp'],
    ['time_hour=eq.2013-01-01', 'time_hour', 'a timestamp'],
    ['flight_date=eq.2013-02-29', 'flight_date', 'a date'],
    ['from=2013-1-1', 'from', 'a date'],
    ['to=yesterday', 'to', 'a date'],
  ])('%s is refused as not the column type', (qs, parameter, expected) => {
    const p = problem(qs);
    expect(p.status).toBe(400);
    expect(p.extensions.parameter).toBe(parameter);
    expect(p.detail).toContain(expected);
    expect(p.extensions.expected).toContain(expected);
  });

  it('names the type a value must have', () => {
    expect(problem('dep_delay=gt.abc').toJSON()).toMatchObject({
      parameter: 'dep_delay',
      type: 'number',
      expected: 'a decimal number',
      detail: 'dep_delay: "abc" is not a decimal number.',
    });
  });

  it.each([
    ['month=1', 'month'],
    ['month=', 'month'],
    ['month=equals.1', 'month'],
    ['month=not.not.eq.1', 'month'],
    ['month=match.1', 'month'],
  ])('%s is refused listing the operators an integer column takes', (qs, parameter) => {
    const p = problem(qs);
    expect(p.extensions).toEqual({ parameter, allowed: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'in', 'is', 'not'] });
  });

  it('lists like and ilike for a text column', () => {
    expect(problem('carrier=UA').extensions.allowed).toEqual(['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'in', 'is', 'not']);
  });

  it.each([
    ['month=like.1*', 'month', 'text columns only'],
    ['dep_time=is.true', 'dep_time', 'null or not_null'],
    ['carrier=in.UA,AA', 'carrier', 'parentheses'],
    ['carrier=in.("UA)', 'carrier', 'unterminated'],
    ['carrier=in.("UA"x)', 'carrier', 'comma'],
    ['carrier=in.(U"A)', 'carrier', 'quote'],
    ['from=2013-02-01&to=2013-01-01', 'to', 'before'],
  ])('%s is refused: %s', (qs, parameter, detail) => {
    const p = problem(qs);
    expect(p.extensions.parameter).toBe(parameter);
    expect(p.detail).toContain(detail);
  });

  it('names an unknown parameter and lists the allowed ones', () => {
    const p = problem('carrier=eq.UA&offset=10');
    expect(p.status).toBe(400);
    expect(p.toJSON()).toMatchObject({ type: '/problems/invalid-parameter', status: 400, parameter: 'offset' });
    expect(p.extensions.allowed).toEqual(expect.arrayContaining(['select', 'order', 'limit', 'cursor', 'carrier', 'flight_date', '_source_line']));
  });

  it.each([
    ['carier=eq.UA', 'carier', 'carrier'],
    ['Carrier=eq.UA', 'Carrier', 'carrier'],
    ['dep_dealy=gt.1', 'dep_dealy', 'dep_delay'],
    ['limt=5', 'limt', 'limit'],
    ['select=carrier,fligth', 'select', 'flight'],
    ['select=dest_delay.avg()', 'select', 'dep_delay'],
    ['order=tailnumber', 'order', 'tailnum'],
  ])('%s suggests the near miss', (qs, parameter, meant) => {
    const p = problem(qs);
    expect(p.extensions.parameter).toBe(parameter);
    expect(p.detail).toMatch(new RegExp(`Did you mean \`${meant}\`\\?$`));
  });

  it('suggests nothing for a name close to none', () => {
    expect(problem('offset=10').detail).not.toContain('Did you mean');
  });

  it('refuses a reserved parameter given twice', () => {
    expect(problem('limit=1&limit=2').extensions.parameter).toBe('limit');
  });
});

describe('select', () => {
  it('defaults to the schema columns, without lineage or derived ones', () => {
    const parsed = parse('');
    expect(parsed.columns).toEqual(COLUMNS.map((c) => c.name));
    expect(parsed.spec.select).toEqual(parsed.columns);
  });

  it('returns lineage and derived columns when named, in the order asked, once each', () => {
    expect(parse('select=flight_date,carrier,_loaded_at,carrier').columns).toEqual(['flight_date', 'carrier', '_loaded_at']);
    expect(parse('select=*,_source_line').columns).toEqual([...COLUMNS.map((c) => c.name), '_source_line']);
  });

  it.each(['select=carrier,nope', 'select=', 'select=carrier;x', 'select=CARRIER'])('%s names select', (qs) => {
    const p = problem(qs);
    expect(p.extensions.parameter).toBe('select');
    expect(p.extensions.allowed).toContain('carrier');
  });
});

describe('aggregates', () => {
  it('groups by the plain columns and names aggregates by function or alias', () => {
    const parsed = parse('select=carrier,count(),d:dep_delay.avg(),month,distance.sum(),air_time.max(),arr_delay.min(),n:tailnum.count()');
    expect(parsed.columns).toEqual(['carrier', 'count', 'd', 'month', 'sum', 'max', 'min', 'n']);
    expect(parsed.spec.aggregate).toEqual({
      groupBy: ['carrier', 'month'],
      measures: [
        { fn: 'count', column: null, alias: 'count' },
        { fn: 'avg', column: 'dep_delay', alias: 'd' },
        { fn: 'sum', column: 'distance', alias: 'sum' },
        { fn: 'max', column: 'air_time', alias: 'max' },
        { fn: 'min', column: 'arr_delay', alias: 'min' },
        { fn: 'count', column: 'tailnum', alias: 'n' },
      ],
    });
    expect(parsed.spec.select).toEqual(['carrier', 'month']);
  });

  it('orders by aggregates or grouping columns, then the grouping columns as tiebreaker', () => {
    expect(parse('select=carrier,origin,count()&order=count.desc,origin').spec.order).toEqual([
      { column: 'count', direction: 'desc', nulls: 'first' },
      { column: 'origin', direction: 'asc', nulls: 'last' },
      { column: 'carrier', direction: 'asc', nulls: 'last' },
    ]);
  });

  it.each([
    ['select=carrier,count()&order=month', 'order', 'cannot sort by'],
    ['select=carrier.sum()', 'select', 'numeric column'],
    ['select=time_hour.avg()', 'select', 'numeric column'],
    ['select=sum()', 'select', 'needs a column'],
    ['select=dep_delay.median()', 'select', 'not an aggregate'],
    ['select=nope.sum()', 'select', 'unknown column'],
    ['select=dep_delay.avg(),arr_delay.avg()', 'select', 'alias'],
    ['select=carrier:dep_delay.avg()', 'select', 'not a column name'],
    ['select=carrier,Carrier:count()', 'select', 'not a column name (in any case)'],
    ['select=carrier,n:count(),N:dep_delay.avg()', 'select', 'two aggregates are named'],
    ['select=1x:dep_delay.avg()', 'select', 'alias'],
    ['select=*,count()', 'select', 'grouped'],
    ['select=carrier,count()&cursor=abc', 'cursor', 'not paginated by cursor'],
  ])('%s is refused naming %s', (qs, parameter, detail) => {
    const p = problem(qs);
    expect(p.extensions.parameter).toBe(parameter);
    expect(p.detail).toContain(detail);
  });
});

describe('order', () => {
  it('defaults to the unique tiebreaker alone', () => {
    expect(parse('').spec.order).toEqual(TIEBREAKER);
  });

  it('takes directions and NULL placement, PostgREST defaults included, then the tiebreaker', () => {
    expect(parse('order=dep_delay.desc,carrier,arr_delay.asc.nullsfirst,name.desc.nullslast,month.nullsfirst').spec.order).toEqual([
      { column: 'dep_delay', direction: 'desc', nulls: 'first' },
      { column: 'carrier', direction: 'asc', nulls: 'last' },
      { column: 'arr_delay', direction: 'asc', nulls: 'first' },
      { column: 'name', direction: 'desc', nulls: 'last' },
      { column: 'month', direction: 'asc', nulls: 'first' },
      ...TIEBREAKER,
    ]);
  });

  it('does not repeat a tiebreaker column the client already sorts by', () => {
    expect(parse('order=_source_line.desc').spec.order.map((k) => `${k.column}.${k.direction}`)).toEqual([
      '_source_line.desc',
      '_source_generation.asc',
      '_source_object.asc',
    ]);
  });

  it.each(['order=nope', 'order=carrier.up', 'order=carrier.asc.nullsfirst.x', 'order=carrier,carrier.desc', 'order='])('%s names order', (qs) => {
    expect(problem(qs).extensions.parameter).toBe('order');
  });
});

describe('limit, count, format', () => {
  it('limit defaults to 10 and accepts 0 to the maximum', () => {
    expect(parse('').spec.limit).toBe(10);
    expect(parse('limit=0').spec.limit).toBe(0);
    expect(parse('limit=10000').spec.limit).toBe(10000);
    expect(parse('limit=50', 50).spec.limit).toBe(50);
  });

  it.each([
    ['limit=10001', undefined, '0..10000'],
    ['limit=51', 50, '0..50'],
    ['limit=-1', undefined, '0..10000'],
    ['limit=1.5', undefined, '0..10000'],
    ['limit=ten', undefined, '0..10000'],
  ])('%s (max %s) is refused', (qs, max, allowed) => {
    expect(problemFrom(() => parse(qs, max)).extensions).toEqual({ parameter: 'limit', allowed: [allowed] });
  });

  it('count=exact and format are reported; other values are refused', () => {
    expect(parse('count=exact&format=csv')).toMatchObject({ count: true, format: 'csv' });
    expect(parse('')).toMatchObject({ count: false });
    expect(parse('').format).toBeUndefined();
    expect(problem('count=planned').extensions).toEqual({ parameter: 'count', allowed: ['exact'] });
    expect(problem('format=xml').extensions).toEqual({ parameter: 'format', allowed: ['json', 'csv', 'ndjson'] });
  });
});

describe('cursor', () => {
  const first = parse('carrier=eq.UA&order=dep_delay.desc');
  const row = { dep_delay: 12.5, _source_object: 'uploads/a.csv', _source_generation: '1712345678901234567', _source_line: 42 };
  const cursor = nextCursor(first.spec, row, SECRET);

  it('resumes after the row it was made from', () => {
    expect(parse(`carrier=eq.UA&order=dep_delay.desc&cursor=${cursor}`).spec.after).toEqual([12.5, '1712345678901234567', 42, 'uploads/a.csv']);
  });

  it('does not care about the order the filters were written in, nor the limit', () => {
    expect(parse(`order=dep_delay.desc&limit=3&cursor=${cursor}&carrier=eq.UA`).spec.after).toHaveLength(4);
  });

  it.each([
    ['carrier=eq.UA&order=dep_delay.asc', 'different order'],
    ['carrier=eq.UA', 'different order'],
    ['carrier=eq.AA&order=dep_delay.desc', 'different filters'],
    ['carrier=eq.UA&order=dep_delay.desc&from=2013-01-01', 'different filters'],
  ])('is refused with %s', (qs, detail) => {
    const p = problem(`${qs}&cursor=${cursor}`);
    expect(p.extensions.parameter).toBe('cursor');
    expect(p.detail).toContain(detail);
  });
});
