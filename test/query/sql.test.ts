import { describe, expect, it } from 'vitest';
import { bigQueryDialect, compileCount, compileExport, compileSelect, duckDbDialect } from '../../functions/core/sql.js';
import { parseExportRequest } from '../../functions/exports/request.js';
import { problemFrom } from './problems.js';
import type { QuerySpec } from '../../functions/core/query-spec.js';
import { parseQuery } from '../../functions/query/grammar.js';
import { nextCursor } from '../../functions/query/cursor.js';

const SECRET = 'sql-secret';
const spec = (qs: string): QuerySpec => parseQuery(new URLSearchParams(qs), { cursorSecret: SECRET }).spec;
const duck = duckDbDialect();
const bq = bigQueryDialect('proj.ds.flights');
const TIE_ORDER = '_source_generation ASC NULLS LAST, _source_line ASC NULLS LAST, _source_object ASC NULLS LAST';
const TIE_SELECT = '_source_generation, _source_line, _source_object';

describe('compileSelect', () => {
  const filtered = spec('select=carrier,tailnum&carrier=in.(UA,"A,A")&tailnum=ilike.n1*&name=not.like.*Inc*&dep_time=is.null&arr_time=not.is.null&month=not.in.(1,2)&time_hour=gte.2013-01-01 05:00:00&from=2013-01-01&limit=5');

  it('DuckDB: list_contains, ILIKE, casts for temporal parameters, typed values', () => {
    expect(compileSelect(filtered, duck)).toEqual({
      sql: [
        `SELECT carrier, tailnum, ${TIE_SELECT}`,
        'FROM flights',
        'WHERE list_contains($p0, carrier) AND tailnum ILIKE $p1 AND name NOT LIKE $p2 AND dep_time IS NULL AND arr_time IS NOT NULL' +
          ' AND NOT list_contains($p3, month) AND time_hour >= $p4::TIMESTAMP AND flight_date >= $p5::DATE',
        `ORDER BY ${TIE_ORDER}`,
        'LIMIT 5',
      ].join('\n'),
      params: [
        { name: 'p0', value: ['UA', 'A,A'], type: 'string', array: true },
        { name: 'p1', value: 'n1%', type: 'string', array: false },
        { name: 'p2', value: '%Inc%', type: 'string', array: false },
        { name: 'p3', value: [1, 2], type: 'integer', array: true },
        { name: 'p4', value: '2013-01-01 05:00:00', type: 'timestamp', array: false },
        { name: 'p5', value: '2013-01-01', type: 'date', array: false },
      ],
      columns: [
        { name: 'carrier', type: 'string' },
        { name: 'tailnum', type: 'string' },
        { name: '_source_generation', type: 'integer' },
        { name: '_source_line', type: 'integer' },
        { name: '_source_object', type: 'string' },
      ],
    });
  });

  it('BigQuery: IN UNNEST, LOWER LIKE, @parameters, same values', () => {
    const compiled = compileSelect(filtered, bq);
    expect(compiled.sql).toBe(
      [
        `SELECT carrier, tailnum, ${TIE_SELECT}`,
        'FROM `proj.ds.flights`',
        'WHERE carrier IN UNNEST(@p0) AND LOWER(tailnum) LIKE LOWER(@p1) AND name NOT LIKE @p2 AND dep_time IS NULL AND arr_time IS NOT NULL' +
          ' AND month NOT IN UNNEST(@p3) AND time_hour >= @p4 AND flight_date >= @p5',
        `ORDER BY ${TIE_ORDER}`,
        'LIMIT 5',
      ].join('\n'),
    );
    expect(compiled.params).toEqual(compileSelect(filtered, duck).params);
  });

  it('not.ilike in both dialects', () => {
    const s = spec('select=carrier&name=not.ilike.*air*');
    expect(compileSelect(s, duck).sql).toContain('WHERE name NOT ILIKE $p0');
    expect(compileSelect(s, bq).sql).toContain('WHERE LOWER(name) NOT LIKE LOWER(@p0)');
  });

  it('keyset: after the cursor row under the sort, NULL placement included', () => {
    const first = spec('select=carrier&carrier=eq.UA&order=dep_delay.desc&limit=7');
    const cursor = nextCursor(first, { dep_delay: 5, _source_object: 'o', _source_generation: '1712345678901234567', _source_line: 9 }, SECRET);
    const next = spec(`select=carrier&carrier=eq.UA&order=dep_delay.desc&limit=7&cursor=${cursor}`);
    const compiled = compileSelect(next, duck);
    expect(compiled.sql).toBe(
      [
        `SELECT carrier, dep_delay, ${TIE_SELECT}`,
        'FROM flights',
        'WHERE carrier = $p0 AND (' +
          '(dep_delay < $p1) OR ' +
          '(dep_delay = $p2 AND (_source_generation > $p3 OR _source_generation IS NULL)) OR ' +
          '(dep_delay = $p4 AND _source_generation = $p5 AND (_source_line > $p6 OR _source_line IS NULL)) OR ' +
          '(dep_delay = $p7 AND _source_generation = $p8 AND _source_line = $p9 AND (_source_object > $p10 OR _source_object IS NULL)))',
        `ORDER BY dep_delay DESC NULLS FIRST, ${TIE_ORDER}`,
        'LIMIT 7',
      ].join('\n'),
    );
    expect(compiled.params.map((p) => [p.value, p.type])).toEqual([
      ['UA', 'string'],
      [5, 'number'],
      [5, 'number'],
      ['1712345678901234567', 'integer'],
      [5, 'number'],
      ['1712345678901234567', 'integer'],
      [9, 'integer'],
      [5, 'number'],
      ['1712345678901234567', 'integer'],
      [9, 'integer'],
      ['o', 'string'],
    ]);
    expect(compileSelect(next, bq).sql).toContain('(dep_delay < @p1) OR');
  });

  it('keyset from a NULL: nulls-first keys continue with the non-NULL values, nulls-last keys have nothing after', () => {
    const base: QuerySpec = {
      select: ['carrier'],
      filters: [],
      order: [
        { column: 'dep_delay', direction: 'desc', nulls: 'first' },
        { column: 'arr_delay', direction: 'asc', nulls: 'last' },
      ],
      limit: 3,
      after: [null, null],
    };
    expect(compileSelect(base, duck).sql).toContain('WHERE ((dep_delay IS NOT NULL) OR (dep_delay IS NULL AND FALSE))');
  });

  it('aggregates: GROUP BY with quoted aliases, ordering by alias or grouping column', () => {
    const s = spec('select=carrier,month,count(),d:dep_delay.avg(),distance.sum(),flight.max()&origin=eq.JFK&order=d.desc&limit=20');
    expect(compileSelect(s, duck)).toEqual({
      sql: [
        'SELECT carrier, month, COUNT(*) AS "count", AVG(dep_delay) AS "d", SUM(distance) AS "sum", MAX(flight) AS "max"',
        'FROM flights',
        'WHERE origin = $p0',
        'GROUP BY carrier, month',
        'ORDER BY "d" DESC NULLS FIRST, carrier ASC NULLS LAST, month ASC NULLS LAST',
        'LIMIT 20',
      ].join('\n'),
      params: [{ name: 'p0', value: 'JFK', type: 'string', array: false }],
      columns: [
        { name: 'carrier', type: 'string' },
        { name: 'month', type: 'integer' },
        { name: 'count', type: 'integer' },
        { name: 'd', type: 'number' },
        { name: 'sum', type: 'number' },
        { name: 'max', type: 'integer' },
      ],
    });
    expect(compileSelect(s, bq).sql).toBe(
      [
        'SELECT carrier, month, COUNT(*) AS `count`, AVG(dep_delay) AS `d`, SUM(distance) AS `sum`, MAX(flight) AS `max`',
        'FROM `proj.ds.flights`',
        'WHERE origin = @p0',
        'GROUP BY carrier, month',
        'ORDER BY `d` DESC NULLS FIRST, carrier ASC NULLS LAST, month ASC NULLS LAST',
        'LIMIT 20',
      ].join('\n'),
    );
  });

  it('an aggregate without grouping columns has no GROUP BY', () => {
    expect(compileSelect(spec('select=dep_delay.count()'), duck).sql).toBe('SELECT COUNT(dep_delay) AS "count"\nFROM flights\nLIMIT 10');
  });

  it('refuses identifiers that are not in the schema even if a spec was built by hand', () => {
    const bad: QuerySpec = { select: ['carrier; DROP TABLE flights'], filters: [], order: [], limit: 1 };
    expect(() => compileSelect(bad, duck)).toThrow(/not a queryable column/);
    const badOrder: QuerySpec = { select: ['carrier'], filters: [], order: [{ column: '1; --', direction: 'asc', nulls: 'last' }], limit: 1 };
    expect(() => compileSelect(badOrder, duck)).toThrow(/not a queryable column/);
    const badMeasure: QuerySpec = { ...badOrder, order: [], aggregate: { groupBy: [], measures: [{ fn: 'sum', column: 'carrier', alias: 's' }] } };
    expect(() => compileSelect(badMeasure, duck)).toThrow(/numeric/);
  });
});

describe('compileCount', () => {
  it('keeps the filters, drops the keyset position, the order and the limit', () => {
    const first = spec('carrier=eq.UA&limit=3');
    const cursor = nextCursor(first, { _source_object: 'o', _source_generation: '1', _source_line: 2 }, SECRET);
    const s = spec(`carrier=eq.UA&limit=3&cursor=${cursor}`);
    expect(compileCount(s, duck)).toEqual({
      sql: 'SELECT COUNT(*) AS "count"\nFROM flights\nWHERE carrier = $p0',
      params: [{ name: 'p0', value: 'UA', type: 'string', array: false }],
      columns: [{ name: 'count', type: 'integer' }],
    });
    expect(compileCount(spec(''), bq).sql).toBe('SELECT COUNT(*) AS `count`\nFROM `proj.ds.flights`');
  });

  it('counts groups for an aggregate', () => {
    expect(compileCount(spec('select=carrier,count()&dep_delay=gt.0'), bq).sql).toBe(
      'SELECT COUNT(*) AS `count`\nFROM (SELECT carrier\nFROM `proj.ds.flights`\nWHERE dep_delay > @p0\nGROUP BY carrier) AS g',
    );
    expect(compileCount(spec('select=count()'), duck).sql).toBe('SELECT COUNT(*) AS "count"\nFROM (SELECT COUNT(*) AS n\nFROM flights) AS g');
  });
});

describe('compileExport', () => {
  const exportOf = (qs: string) => {
    const parsed = parseExportRequest(new URLSearchParams(qs), SECRET);
    return compileExport(parsed.spec, parsed.columns, duck);
  };

  it('writes exactly the asked columns as text, sorts the typed values by the full order, and has no LIMIT unless asked', () => {
    const tie = TIE_ORDER.replace(/(\w+) ASC/g, 'r."$1" ASC');
    expect(exportOf('select=tailnum,carrier&order=dep_delay.desc&carrier=eq.UA')).toMatchObject({
      sql: [
        'SELECT r."tailnum" AS "tailnum", r."carrier" AS "carrier"',
        'FROM (',
        'SELECT tailnum, carrier, dep_delay, _source_generation, _source_line, _source_object',
        'FROM flights',
        'WHERE carrier = $p0',
        ') AS r',
        `ORDER BY r."dep_delay" DESC NULLS FIRST, ${tie}`,
      ].join('\n'),
      columns: [
        { name: 'tailnum', type: 'string' },
        { name: 'carrier', type: 'string' },
      ],
    });
    // The limit keeps the first rows of the order, so the inner query sorts too.
    expect(exportOf('select=carrier&limit=20').sql).toContain(`\nORDER BY ${TIE_ORDER}\nLIMIT 20\n) AS r\nORDER BY ${tie}`);
  });

  it('refuses an unknown parameter without offering the page-only cursor and count', () => {
    const p = problemFrom(() => parseExportRequest(new URLSearchParams('origin=eq.JFK&offset=5'), SECRET));
    expect(p.extensions.parameter).toBe('offset');
    expect(p.extensions.allowed).toEqual(expect.arrayContaining(['select', 'order', 'limit', 'format', 'from', 'to', 'origin']));
    expect(p.extensions.allowed).not.toContain('cursor');
    expect(p.extensions.allowed).not.toContain('count');
    expect(p.detail).not.toMatch(/cursor|count/);
  });

  it('keeps an aggregate’s columns in the order asked for, each measure written as its type', () => {
    expect(exportOf('select=n:count(),carrier,avg_delay:dep_delay.avg()&order=n.desc').sql).toBe(
      [
        `SELECT CAST(r."n" AS VARCHAR) AS "n", r."carrier" AS "carrier", ${duck.cellText('r."avg_delay"', 'number')} AS "avg_delay"`,
        'FROM (',
        'SELECT COUNT(*) AS "n", carrier, AVG(dep_delay) AS "avg_delay"',
        'FROM flights',
        'GROUP BY carrier',
        ') AS r',
        'ORDER BY r."n" DESC NULLS FIRST, r."carrier" ASC NULLS LAST',
      ].join('\n'),
    );
  });
});
