/** Many small CSV files as one: each record kept whole and tagged with its file, whatever its quotes and newlines. */
import { describe, expect, it } from 'vitest';
import { concatenatedCsv, UnterminatedCsvError } from '../../functions/adapters/duckdb/concatenated-csv.js';

const file = (name: string, text: string) => ({ name, csv: Buffer.from(text) });

describe('concatenatedCsv', () => {
  it('writes the header once and each record after its file’s header with the file’s index, counting records', () => {
    const { csv, records } = concatenatedCsv('a,b', [file('x', 'a,b\r\n1,2\r\n3,4\r\n'), file('y', 'a,b\r\n'), file('z', 'a,b\r\n5,6\r\n')]);
    expect(csv.toString()).toBe('_file,a,b\r\n1,1,2\r\n1,3,4\r\n3,5,6\r\n');
    expect(records).toEqual([2, 0, 1]);
  });

  it('keeps a newline inside a quoted field (and escaped quotes) within its record', () => {
    const { csv, records } = concatenatedCsv('a,b', [file('x', 'a,b\r\n"line\r\nbreak","say ""hi""\r\n2"\r\n7,8\r\n')]);
    expect(csv.toString()).toBe('_file,a,b\r\n1,"line\r\nbreak","say ""hi""\r\n2"\r\n1,7,8\r\n');
    expect(records).toEqual([2]);
  });

  it('ends a file’s last record without a newline, so the next file’s first record stays its own', () => {
    const { csv, records } = concatenatedCsv('a', [file('x', 'a\r\n1'), file('y', 'a\r\n2\r\n')]);
    expect(csv.toString()).toBe('_file,a\r\n1,1\r\n2,2\r\n');
    expect(records).toEqual([1, 1]);
  });

  it('writes its header and added newlines as the files end their lines (LF, as ingest writes them)', () => {
    const { csv } = concatenatedCsv('a', [file('empty', ''), file('x', 'a\n1\n2'), file('y', 'a\n3\n')]);
    expect(csv.toString()).toBe('_file,a\n2,1\n2,2\n3,3\n');
  });

  it('refuses a file that ends inside a quoted field, naming it', () => {
    expect(() => concatenatedCsv('a', [file('ok', 'a\r\n1\r\n'), file('open.csv', 'a\r\n"1\r\n')])).toThrow(UnterminatedCsvError);
    expect(() => concatenatedCsv('a', [file('open.csv', 'a\r\n"1')])).toThrow(/open\.csv/);
  });
});
