/** Canonical cells: the fast paths for plain digits and exact timestamps give what the general path gives. */
import { describe, expect, it } from 'vitest';
import { columnByName } from '../../functions/core/schema.js';
import { canonicalCell } from '../../functions/ingest/cells.js';

const cell = (column: string, raw: string): unknown => {
  const result = canonicalCell(columnByName.get(column)!, raw);
  return typeof result === 'string' ? result : { fault: result.reason };
};

describe('canonicalCell', () => {
  it('keeps plain integers and rewrites the others as JavaScript prints them', () => {
    expect(['517', '0', ' 12 ', '0517', '+5', '517.0', '517.', '999999999999999', '9007199254740991'].map((raw) => cell('flight', raw))).toEqual([
      '517', '0', '12', '517', '5', '517', '517', '999999999999999', '9007199254740991',
    ]);
    expect(cell('flight', '9007199254740993')).toEqual({ fault: 'integer out of range' });
    expect(cell('flight', '1e3')).toEqual({ fault: 'expected an integer' });
    expect(cell('flight', '5.5')).toEqual({ fault: 'expected an integer' });
    expect(cell('month', '13')).toEqual({ fault: '13 is above the maximum 12' });
    expect(cell('month', '012')).toEqual('12');
  });

  it('keeps plain numbers, negative ones too, and rewrites the others', () => {
    expect(['-2', '0', '-0', '-05', '2.0', '2.50', '1e3', '.5', '-12.25'].map((raw) => cell('dep_delay', raw))).toEqual([
      '-2', '0', '0', '-5', '2', '2.5', '1000', '0.5', '-12.25',
    ]);
    expect(cell('distance', '-1')).toEqual({ fault: '-1 is below the minimum 0' });
    expect(cell('distance', '1e999')).toEqual({ fault: 'number out of range' });
    expect(cell('distance', '-')).toEqual({ fault: 'expected a number' });
  });

  it('keeps an exact YYYY-MM-DD HH:MM:SS, completes the other forms, and refuses impossible ones', () => {
    expect(['2013-01-01 05:00:00', '2013-01-01T05:00', '2013-01-01 05:00:00.5Z', '2012-02-29 23:59:59'].map((raw) => cell('time_hour', raw))).toEqual([
      '2013-01-01 05:00:00', '2013-01-01 05:00:00', '2013-01-01 05:00:00.5', '2012-02-29 23:59:59',
    ]);
    for (const raw of ['2013-02-29 05:00:00', '2013-01-01 24:00:00', '2013-01-01 05:60:00', '2013-01-01 05:00:60', '2013-13-01 05:00:00']) {
      expect(cell('time_hour', raw)).toEqual({ fault: 'not a real date and time' });
    }
    expect(cell('time_hour', '2013-01-01 5:00:00')).toEqual({ fault: 'expected a timestamp like 2013-01-01 05:00:00' });
    expect(cell('time_hour', '2013-01-0x 05:00:00')).toEqual({ fault: 'expected a timestamp like 2013-01-01 05:00:00' });
  });

  it('treats empty and NA as NULL, where the column allows it', () => {
    expect(cell('dep_time', 'NA')).toBe('');
    expect(cell('dep_time', ' ')).toBe('');
    expect(cell('flight', '')).toEqual({ fault: 'a value is required' });
  });
});
