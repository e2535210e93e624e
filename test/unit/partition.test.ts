import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { impliedDateRange, withPartitionBounds } from '../../functions/core/partition.js';
import type { Filter, QuerySpec } from '../../functions/core/query-spec.js';
import { compileSelect, duckDbDialect } from '../../functions/core/sql.js';

const eq = (column: string, value: number): Filter => ({ column, op: 'eq', value });

describe('partition bounds implied by year/month/day filters', () => {
  it.each([
    [[eq('year', 2013)], ['2013-01-01', '2013-12-31']],
    [[eq('year', 2012), eq('month', 2)], ['2012-02-01', '2012-02-29']],
    [[eq('year', 2013), eq('month', 7), eq('day', 4)], ['2013-07-04', '2013-07-04']],
    [[eq('year', 2013), eq('month', 2), eq('day', 30)], ['2013-02-01', '2013-02-28']],
    [[eq('month', 7)], undefined],
    [[{ column: 'year', op: 'gt', value: 2012 } as Filter], undefined],
  ])('%j → %j', (filters, range) => {
    expect(impliedDateRange(filters)).toEqual(range);
  });

  it('never changes which rows match', async () => {
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    await db.run(`CREATE TABLE flights AS SELECT d::DATE AS flight_date, year(d) AS year, month(d) AS month, day(d) AS day
                  FROM range(DATE '2012-12-01', DATE '2014-02-01', INTERVAL 1 DAY) t(d)`);
    for (const filters of [[eq('year', 2013)], [eq('year', 2013), eq('month', 1)], [eq('year', 2013), eq('month', 1), eq('day', 31)]]) {
      const spec: QuerySpec = { select: ['flight_date'], filters, order: [{ column: 'flight_date', direction: 'asc', nulls: 'last' }], limit: 1000 };
      const run = async (s: QuerySpec) => {
        const { sql, params } = compileSelect(s, duckDbDialect());
        const values = Object.fromEntries(params.map((p) => [p.name, p.value]));
        return (await db.runAndReadAll(sql, values as never)).getRowObjectsJson();
      };
      const bounded = withPartitionBounds(spec);
      expect(bounded.filters.length).toBe(filters.length + 2);
      expect(await run(bounded)).toEqual(await run(spec));
    }
  });
});
