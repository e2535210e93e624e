/**
 * The grammar and the SQL compiler against real DuckDB: every case asks the
 * same question once through parseQuery → warehouse.query and once as plain
 * hand-written SQL, and the answers must be identical, row order included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuery } from '../../functions/query/grammar.js';
import { project } from '../../functions/query/formats.js';
import { pageCursor } from '../../functions/query/cursor.js';
import { isProblem } from '../../functions/core/problem.js';
import { fixtureWarehouse, loadFiles } from './fixture.js';
import type { DuckDbWarehouse } from '../../functions/adapters/duckdb/warehouse.js';

const SECRET = 'oracle-secret';
const ALL =
  'id, year, month, day, dep_time, sched_dep_time, dep_delay, arr_time, sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest, air_time, distance, hour, minute, time_hour, name';
const TIE = '_source_generation, _source_line, _source_object';
const BIG_GENERATION = '1712345678901234567';

let fx: Awaited<ReturnType<typeof fixtureWarehouse>>;
let warehouse: DuckDbWarehouse;
beforeAll(async () => {
  fx = await fixtureWarehouse();
  warehouse = fx.warehouse;
});
afterAll(() => fx.close());

async function viaApi(qs: string): Promise<Record<string, unknown>[]> {
  const parsed = parseQuery(new URLSearchParams(qs), { cursorSecret: SECRET });
  const { rows } = await warehouse.query(parsed.spec);
  return rows.map((r) => project(r, parsed.columns));
}

async function viaSql(sql: string): Promise<Record<string, unknown>[]> {
  return (await warehouse.run(sql)).rows;
}

/** [query string, plain SQL answering the same question] */
const CASES: [string, string][] = [
  ['', `SELECT ${ALL} FROM flights ORDER BY ${TIE} LIMIT 10`],
  ['limit=10000&carrier=eq.UA', `SELECT ${ALL} FROM flights WHERE carrier = 'UA' ORDER BY ${TIE}`],
  ['limit=10000&carrier=neq.UA', `SELECT ${ALL} FROM flights WHERE carrier <> 'UA' ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=gt.30', `SELECT ${ALL} FROM flights WHERE dep_delay > 30 ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=gte.30', `SELECT ${ALL} FROM flights WHERE dep_delay >= 30 ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=lt.-5', `SELECT ${ALL} FROM flights WHERE dep_delay < -5 ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=lte.0', `SELECT ${ALL} FROM flights WHERE dep_delay <= 0 ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=eq.12.5', `SELECT ${ALL} FROM flights WHERE dep_delay = 12.5 ORDER BY ${TIE}`],
  ['limit=10000&month=in.(1,3,5)', `SELECT ${ALL} FROM flights WHERE month IN (1, 3, 5) ORDER BY ${TIE}`],
  ['limit=10000&carrier=in.(UA,"B6")', `SELECT ${ALL} FROM flights WHERE carrier IN ('UA', 'B6') ORDER BY ${TIE}`],
  ['limit=10000&name=in.("Foo, Inc.",JetBlue Airways,"Say \\"Hi\\" Air")', `SELECT ${ALL} FROM flights WHERE name IN ('Foo, Inc.', 'JetBlue Airways', 'Say "Hi" Air') ORDER BY ${TIE}`],
  ['limit=10000&carrier=not.in.(UA,AA)', `SELECT ${ALL} FROM flights WHERE carrier NOT IN ('UA', 'AA') ORDER BY ${TIE}`],
  ['limit=10000&name=not.in.(JetBlue Airways)', `SELECT ${ALL} FROM flights WHERE name NOT IN ('JetBlue Airways') ORDER BY ${TIE}`],
  ['limit=10000&month=in.()', `SELECT ${ALL} FROM flights WHERE FALSE`],
  ['limit=10000&tailnum=like.N1*', `SELECT ${ALL} FROM flights WHERE tailnum LIKE 'N1%' ORDER BY ${TIE}`],
  ['limit=10000&tailnum=ilike.n1*ua', `SELECT ${ALL} FROM flights WHERE lower(tailnum) LIKE 'n1%ua' ORDER BY ${TIE}`],
  ['limit=10000&name=like.*Inc*', `SELECT ${ALL} FROM flights WHERE name LIKE '%Inc%' ORDER BY ${TIE}`],
  ['limit=10000&tailnum=not.like.N1*', `SELECT ${ALL} FROM flights WHERE tailnum NOT LIKE 'N1%' ORDER BY ${TIE}`],
  ['limit=10000&name=not.ilike.*INC*', `SELECT ${ALL} FROM flights WHERE lower(name) NOT LIKE '%inc%' ORDER BY ${TIE}`],
  ['limit=10000&dep_time=is.null', `SELECT ${ALL} FROM flights WHERE dep_time IS NULL ORDER BY ${TIE}`],
  ['limit=10000&dep_time=not.is.null', `SELECT ${ALL} FROM flights WHERE dep_time IS NOT NULL ORDER BY ${TIE}`],
  ['limit=10000&arr_delay=is.not_null', `SELECT ${ALL} FROM flights WHERE arr_delay IS NOT NULL ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=not.gt.30', `SELECT ${ALL} FROM flights WHERE NOT (dep_delay > 30) ORDER BY ${TIE}`],
  ['limit=10000&dep_delay=not.eq.0', `SELECT ${ALL} FROM flights WHERE NOT (dep_delay = 0) ORDER BY ${TIE}`],
  ['limit=10000&arr_delay=not.lte.10', `SELECT ${ALL} FROM flights WHERE NOT (arr_delay <= 10) ORDER BY ${TIE}`],
  [
    'limit=10000&time_hour=gte.2013-06-01 00:00:00&time_hour=lt.2013-07-01T00:00:00',
    `SELECT ${ALL} FROM flights WHERE time_hour >= TIMESTAMP '2013-06-01 00:00:00' AND time_hour < TIMESTAMP '2013-07-01 00:00:00' ORDER BY ${TIE}`,
  ],
  [
    'limit=10000&time_hour=in.(2013-03-15 08:00:00,2013-11-02 14:00:00)',
    `SELECT ${ALL} FROM flights WHERE time_hour IN (TIMESTAMP '2013-03-15 08:00:00', TIMESTAMP '2013-11-02 14:00:00') ORDER BY ${TIE}`,
  ],
  ['limit=10000&flight_date=eq.2013-03-15', `SELECT ${ALL} FROM flights WHERE year = 2013 AND month = 3 AND day = 15 ORDER BY ${TIE}`],
  ['limit=10000&flight_date=in.(2013-01-05,2013-02-10)', `SELECT ${ALL} FROM flights WHERE flight_date IN (DATE '2013-01-05', DATE '2013-02-10') ORDER BY ${TIE}`],
  ['limit=10000&from=2013-03-01&to=2013-03-31', `SELECT ${ALL} FROM flights WHERE month = 3 ORDER BY ${TIE}`],
  ['limit=10000&from=2013-11-15', `SELECT ${ALL} FROM flights WHERE flight_date >= DATE '2013-11-15' ORDER BY ${TIE}`],
  ['limit=10000&to=2013-01-03', `SELECT ${ALL} FROM flights WHERE flight_date <= DATE '2013-01-03' ORDER BY ${TIE}`],
  ['limit=10000&distance=gt.1000&distance=lte.2000', `SELECT ${ALL} FROM flights WHERE distance > 1000 AND distance <= 2000 ORDER BY ${TIE}`],
  ['limit=10000&origin=eq.JFK&dest=eq.LAX&carrier=eq.UA', `SELECT ${ALL} FROM flights WHERE origin = 'JFK' AND dest = 'LAX' AND carrier = 'UA' ORDER BY ${TIE}`],
  [
    'limit=10000&select=carrier,_source_object,_source_line&_source_line=lt.20',
    `SELECT carrier, _source_object, _source_line FROM flights WHERE _source_line < 20 ORDER BY ${TIE}`,
  ],
  [
    `limit=10000&select=_source_generation,_source_line&_source_generation=eq.${BIG_GENERATION}&_source_line=lte.5`,
    `SELECT _source_generation::VARCHAR AS _source_generation, _source_line FROM flights WHERE _source_generation = ${BIG_GENERATION} AND _source_line <= 5 ORDER BY ${TIE}`,
  ],
  ['limit=10000&carrier=eq.ZZ', `SELECT ${ALL} FROM flights WHERE FALSE`],
  ['limit=0', `SELECT ${ALL} FROM flights LIMIT 0`],
  ['limit=50&order=dep_delay.desc', `SELECT ${ALL} FROM flights ORDER BY dep_delay DESC NULLS FIRST, ${TIE} LIMIT 50`],
  ['limit=50&order=dep_delay.asc.nullsfirst', `SELECT ${ALL} FROM flights ORDER BY dep_delay ASC NULLS FIRST, ${TIE} LIMIT 50`],
  ['limit=10000&order=arr_delay.desc.nullslast,carrier', `SELECT ${ALL} FROM flights ORDER BY arr_delay DESC NULLS LAST, carrier, ${TIE}`],
  ['limit=10000&select=carrier,month,flight&order=carrier,month.desc', `SELECT carrier, month, flight FROM flights ORDER BY carrier, month DESC, ${TIE}`],
  ['limit=10000&select=name,tailnum&order=name.desc,tailnum.asc.nullsfirst', `SELECT name, tailnum FROM flights ORDER BY name DESC NULLS FIRST, tailnum NULLS FIRST, ${TIE}`],
  ['limit=10000&select=time_hour,flight_date&order=time_hour.desc&origin=eq.EWR', `SELECT time_hour, flight_date FROM flights WHERE origin = 'EWR' ORDER BY time_hour DESC, ${TIE}`],
  ['select=carrier,count()', 'SELECT carrier, count(*)::INTEGER AS count FROM flights GROUP BY carrier ORDER BY carrier LIMIT 10'],
  [
    'select=carrier,origin,count(),avg_delay:dep_delay.avg()&order=avg_delay.desc&limit=100',
    'SELECT carrier, origin, count(*)::INTEGER AS count, avg(dep_delay) AS avg_delay FROM flights GROUP BY ALL ORDER BY avg_delay DESC NULLS FIRST, carrier, origin',
  ],
  [
    'select=count(),nonnull:dep_delay.count(),distance.sum(),air_time.max(),arr_delay.min()',
    'SELECT count(*)::INTEGER AS count, count(dep_delay)::INTEGER AS nonnull, sum(distance) AS sum, max(air_time) AS max, min(arr_delay) AS min FROM flights',
  ],
  ['select=month,distance.sum()&order=sum.desc&limit=3', 'SELECT month, sum(distance) AS sum FROM flights GROUP BY month ORDER BY sum DESC, month LIMIT 3'],
  [
    'select=count(),flight_date,n:dep_time.count()&from=2013-05-01&to=2013-05-07&dep_delay=gt.0&order=flight_date.desc',
    `SELECT count(*)::INTEGER AS count, flight_date, count(dep_time)::INTEGER AS n FROM flights WHERE flight_date BETWEEN '2013-05-01' AND '2013-05-07' AND dep_delay > 0 GROUP BY flight_date ORDER BY flight_date DESC`,
  ],
  [
    'select=tailnum,flight.max(),flight.min()&tailnum=like.N39*&order=tailnum.desc',
    'SELECT tailnum, max(flight)::INTEGER AS max, min(flight)::INTEGER AS min FROM flights WHERE tailnum LIKE \'N39%\' GROUP BY tailnum ORDER BY tailnum DESC LIMIT 10',
  ],
];

describe('oracle: the API answers as plain SQL does', () => {
  it('has a real data set with NULLs, ties and several source objects', async () => {
    const [stats] = await viaSql(
      'SELECT count(*)::INTEGER AS n, count(DISTINCT _source_object || _source_generation)::INTEGER AS files, count(*) FILTER (dep_delay IS NULL)::INTEGER AS nulls FROM flights',
    );
    expect(stats).toEqual({ n: 2000, files: 3, nulls: expect.any(Number) });
    expect(stats?.nulls).toBeGreaterThan(50);
  });

  it.each(CASES)('%s', async (qs, sql) => {
    const expected = await viaSql(sql);
    expect(await viaApi(qs)).toEqual(expected);
  });

  it('most cases match something, so equality is not vacuous', async () => {
    let nonEmpty = 0;
    for (const [, sql] of CASES) if ((await viaSql(sql)).length > 0) nonEmpty++;
    expect(nonEmpty).toBeGreaterThanOrEqual(40);
  });

  it.each([
    ['carrier=eq.UA', "carrier = 'UA'"],
    ['dep_delay=gt.30&from=2013-06-01', "dep_delay > 30 AND flight_date >= '2013-06-01'"],
    ['tailnum=is.null', 'tailnum IS NULL'],
  ])('count=exact with %s', async (qs, where) => {
    const parsed = parseQuery(new URLSearchParams(`${qs}&count=exact&limit=1`), { cursorSecret: SECRET });
    const [expected] = await viaSql(`SELECT count(*)::INTEGER AS n FROM flights WHERE ${where}`);
    expect(await warehouse.count(parsed.spec)).toBe(expected?.n);
  });

  it('count=exact on an aggregate counts groups', async () => {
    const parsed = parseQuery(new URLSearchParams('select=carrier,origin,count()&dep_delay=gt.0&count=exact'), { cursorSecret: SECRET });
    expect(await warehouse.count(parsed.spec)).toBe(15);
    const global = parseQuery(new URLSearchParams('select=count()&carrier=eq.ZZ'), { cursorSecret: SECRET });
    expect(await warehouse.count(global.spec)).toBe(1);
  });
});

const key = (r: Record<string, unknown>) => `${r._source_object}#${r._source_generation}#${r._source_line}`;

/** Follows next cursors from the first page to the last; `between` runs after each page. */
async function walk(qs: string, between: (page: number, seen: string[]) => Promise<void> = async () => {}): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const parsed = parseQuery(new URLSearchParams(`${qs}&limit=7${cursor ? `&cursor=${cursor}` : ''}`), { cursorSecret: SECRET });
    const { rows } = await warehouse.query(parsed.spec);
    seen.push(...rows.map(key));
    cursor = pageCursor(parsed.spec, rows, SECRET);
    if (!cursor) return seen;
    await between(page, seen);
  }
  throw new Error('pagination did not end');
}

describe('oracle: keyset pagination', () => {
  const ORDERS = [
    'carrier=eq.B6',
    'carrier=eq.B6&order=dep_delay.desc',
    'carrier=eq.B6&order=dep_delay.asc.nullsfirst,month.desc',
    'carrier=eq.B6&order=name.desc.nullslast,tailnum',
    'carrier=eq.B6&order=time_hour.desc,_source_line.desc',
    'origin=eq.JFK&dep_delay=gt.40&order=arr_delay,dest.desc.nullsfirst',
    `dest=eq.MIA&order=_source_generation.desc`,
  ];

  it.each(ORDERS)('limit 7 over %s sees every row once, in order', async (qs) => {
    const parsed = parseQuery(new URLSearchParams(`${qs}&limit=10000`), { cursorSecret: SECRET });
    const all = (await warehouse.query(parsed.spec)).rows.map(key);
    expect(all.length).toBeGreaterThan(30);
    expect(await walk(qs)).toEqual(all);
  });

  it('rows inserted between pages neither repeat nor hide rows, and appear exactly when they sort after the position', async () => {
    const qs = 'carrier=eq.AA&order=dep_delay.desc,name';
    const everything = async () =>
      (await warehouse.query(parseQuery(new URLSearchParams(`${qs}&limit=10000`), { cursorSecret: SECRET }).spec)).rows.map(key);
    const before = await everything();
    let position = '';
    const seen = await walk(qs, async (page, sofar) => {
      if (page !== 1) return;
      position = sofar.at(-1) ?? '';
      // A new object whose generation sorts first among ties, so some of its rows land before the position and some after.
      await loadFiles(warehouse, fx.dir, [{ object: 'uploads/late.csv', generation: '1', rows: 300, seed: 9 }]);
    });
    const after = await everything();
    const cut = after.indexOf(position);
    const expected = after.filter((k, i) => before.includes(k) || i > cut);
    expect(cut).toBeGreaterThan(0);
    expect(expected.length).toBeGreaterThan(before.length);
    expect(expected.length).toBeLessThan(after.length);
    expect(seen).toEqual(expected);
  });
});

describe('oracle: SQL injection', () => {
  const ATTEMPTS = [
    "carrier=eq.UA'; DROP TABLE flights; --",
    "carrier=in.(\"UA') OR 1=1 --\")",
    "tailnum=like.*' OR '1'='1",
    "name=ilike.*'); DROP TABLE flights; --",
    'dep_delay=eq.1 OR 1=1',
    'month=in.(1) OR 1=1',
    "time_hour=gte.2013-01-01 00:00:00' OR '1'='1",
    "from=2013-01-01' OR '1'='1",
    "to=2013-01-01); DROP TABLE flights; --",
    'carrier; DROP TABLE flights; --=eq.UA',
    'select=carrier; DROP TABLE flights',
    'select=carrier,"x"; DROP TABLE flights; --:count()',
    'select=carrier,count() FROM flights; DROP TABLE flights; --',
    'select=carrier,dep_delay); DROP TABLE flights; --.avg()',
    'order=carrier; DROP TABLE flights',
    'order=carrier.desc; DROP TABLE flights',
    'limit=1; DROP TABLE flights',
    'count=exact; DROP TABLE flights',
    'format=csv; DROP TABLE flights',
    "cursor=x'; DROP TABLE flights; --",
    'carrier=not.eq.UA\'--',
  ];

  it.each(ATTEMPTS)('%s is refused or matches nothing', async (qs) => {
    let rows: Record<string, unknown>[] = [];
    try {
      rows = await viaApi(qs);
    } catch (e) {
      expect(isProblem(e) && e.status).toBe(400);
    }
    if (qs.startsWith('carrier=not.eq')) expect(rows.length).toBe(10);
    else expect(rows).toEqual([]);
    const [intact] = await viaSql('SELECT count(*)::INTEGER AS n FROM flights');
    expect(intact?.n).toBeGreaterThanOrEqual(2000);
  });
});
