/** The ingest CSV reader: RFC 4180 records, their lines, its faults, and chunk boundaries anywhere. */
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CsvRecords, CsvSyntaxError } from '../../functions/ingest/csv-records.js';

interface Read {
  records: [string[], number][];
  nextLine: number;
}

/**
 * A sink's choice of plain lines to take, for readers that offer them: records
 * must come out the same whichever lines it takes, so the tests take every
 * other one (and the rest are decoded and split by the reader).
 */
type Offer = (text: string, line: number) => boolean;
const everyOther: Offer = (_text, line) => line % 2 === 0;

/** Feeds `input` in the given chunks (byte offsets), then ends; with `offer`, a taken plain line is split here. */
function read(input: string | Buffer, cuts: number[] = [], maxRecordChars = 1 << 20, offer?: Offer): Read {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const records: [string[], number][] = [];
  const record = (fields: string[], line: number): void => void records.push([fields, line]);
  const plainLine = (b: Buffer, start: number, end: number, line: number): boolean => {
    expect(b[end] === 0x0a || b[end] === 0x0d).toBe(true);
    const text = b.toString('utf8', start, end);
    if (!offer!(text, line)) return false;
    record(text.split(','), line);
    return true;
  };
  const reader = new CsvRecords(maxRecordChars, offer ? { record, plainLine } : { record });
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    reader.write(bytes.subarray(from, cut));
    from = cut;
  }
  reader.end();
  return { records, nextLine: reader.nextLine };
}

function fault(input: string | Buffer, cuts: number[] = [], maxRecordChars?: number): Pick<CsvSyntaxError, 'code' | 'line' | 'column'> {
  try {
    read(input, cuts, maxRecordChars);
  } catch (e) {
    if (e instanceof CsvSyntaxError) return { code: e.code, line: e.line, column: e.column };
    throw e;
  }
  throw new Error('no fault');
}

/** Every way to cut `input` in two, and in three around its middle. */
function cutsOf(bytes: Buffer): number[][] {
  const all: number[][] = [];
  for (let a = 0; a <= bytes.length; a++) all.push([a]);
  const mid = bytes.length >> 1;
  for (let a = 0; a <= mid; a++) all.push([a, mid]);
  return all;
}

describe('CsvRecords', () => {
  it('reads quoted fields: commas, doubled quotes, line breaks, empty quotes', () => {
    const { records } = read('a,"b,c","say ""hi""","two\nlines",""\n');
    expect(records).toEqual([[['a', 'b,c', 'say "hi"', 'two\nlines', ''], 1]]);
  });

  it('reads LF, CRLF and bare CR line ends, with or without a final one', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      for (const last of ['', eol]) {
        expect(read(`a,b${eol}c,d${last}`)).toEqual({ records: [[['a', 'b'], 1], [['c', 'd'], 2]], nextLine: 3 });
      }
    }
  });

  it('keeps empty fields, and gives a blank line as one empty field on its own line', () => {
    expect(read(',a,,\n\n,\n').records).toEqual([
      [['', 'a', '', ''], 1],
      [[''], 2],
      [['', ''], 3],
    ]);
  });

  it('numbers each record by the line it starts on, counting line breaks inside quotes', () => {
    const { records, nextLine } = read('h\n"x\ny\r\nz",1\nlast\n');
    expect(records.map(([, line]) => line)).toEqual([1, 2, 5]);
    expect(nextLine).toBe(6);
  });

  it('drops a UTF-8 BOM only at the start, and decodes multi-byte characters', () => {
    expect(read('\uFEFFa,é\n\uFEFFb\n').records).toEqual([
      [['a', 'é'], 1],
      [['\uFEFFb'], 2],
    ]);
  });

  it('turns bytes that are not UTF-8 into U+FFFD, as csv-parse did', () => {
    expect(read(Buffer.from([0x61, 0x2c, 0xe9, 0x0a])).records).toEqual([[['a', '\uFFFD'], 1]]);
  });

  it('gives the same records wherever the chunks are cut: a BOM, a CRLF, a quote, a doubled quote, an é split in two', () => {
    const input = Buffer.from('\uFEFFid,name\r\n1,"a ""q"" é"\r\n2,"x\r\ny"\r\n3,\r\n,""');
    const whole = read(input);
    expect(whole.records).toEqual([
      [['id', 'name'], 1],
      [['1', 'a "q" é'], 2],
      [['2', 'x\r\ny'], 3],
      [['3', ''], 5],
      [['', ''], 6],
    ]);
    for (const cuts of cutsOf(input)) expect(read(input, cuts)).toEqual(whole);
  });

  it('reports a quote left open at the line where its record starts, and the field', () => {
    const input = 'h\n1,2\n3,"open\nmore\n';
    for (const cuts of cutsOf(Buffer.from(input))) expect(fault(input, cuts)).toEqual({ code: 'unclosed-quote', line: 3, column: 2 });
  });

  it('refuses characters after a closing quote, and a quote inside an unquoted field', () => {
    expect(fault('h\na,"b"x,c\n')).toEqual({ code: 'invalid-closing-quote', line: 2, column: 2 });
    expect(fault('h\n"a" ,b\n')).toEqual({ code: 'invalid-closing-quote', line: 2, column: 1 });
    expect(fault('h\na,b,United "Air"\n')).toEqual({ code: 'invalid-opening-quote', line: 2, column: 3 });
  });

  it('stops a record longer than the bound at the field that crosses it, quoted or not, before the rest arrives', () => {
    expect(fault(`a,${'x'.repeat(20)},c\n`, [], 10)).toEqual({ code: 'record-too-long', line: 1, column: 2 });
    expect(fault(`a,"${'x\n'.repeat(20)}"\n`, [], 10)).toEqual({ code: 'record-too-long', line: 1, column: 2 });
    expect(fault(`h\na,${'x'.repeat(20)}`, [5], 10)).toEqual({ code: 'record-too-long', line: 2, column: 2 });
    expect(read('0123456789\n', [], 10).records).toEqual([[['0123456789'], 1]]);
    expect(read('a,"xxxxxx"\n', [], 10).records).toEqual([[['a', 'xxxxxx'], 1]]);
    expect(fault('a,"xxxxxxx"\n', [], 10)).toEqual({ code: 'record-too-long', line: 1, column: 2 });
  });

  it('offers the lines after the first with no quote and no CR as bytes, and decodes and splits what the caller declines', () => {
    const seen: unknown[] = [];
    const reader = new CsvRecords(1 << 20, {
      record: (fields, line) => void seen.push({ fields, line }),
      plainLine: (bytes, start, end, line) => {
        const text = bytes.toString('latin1', start, end);
        if (text.startsWith('x')) return false;
        seen.push({ text, line });
        return true;
      },
    });
    reader.write(Buffer.from('h,i\na,b\r\n"c",d\nx,y\n\nr\rs\ne,f'));
    reader.end();
    expect(seen).toEqual([
      { fields: ['h', 'i'], line: 1 },
      { text: 'a,b', line: 2 },
      { fields: ['c', 'd'], line: 3 },
      { fields: ['x', 'y'], line: 4 },
      { text: '', line: 5 },
      { fields: ['r'], line: 6 },
      { fields: ['s'], line: 7 },
      { fields: ['e', 'f'], line: 8 },
    ]);
  });

  it('reads the same records, plain lines taken or not, wherever the chunks are cut', () => {
    const input = Buffer.from('\uFEFFid,name\r\n1,x\r\n2,"x\n\ny"\n3,y\n4,é\n\n5,\r6,z\n7,"q"\n8,w');
    const whole = read(input);
    for (const cuts of cutsOf(input)) expect(read(input, cuts, 1 << 20, everyOther)).toEqual(whole);
    for (const cuts of cutsOf(input)) expect(read(input, cuts, 1 << 20, () => true)).toEqual(whole);
  });

  it('gives a long line cut by a chunk to the text path, and offers lines again after it, whatever the cut leaves held (a CR, part of a character)', () => {
    const long = 'x'.repeat(5000);
    const input = Buffer.from(`h\n${long}\r\n1,é\n${long}é\r2\n3,\r4\n5\n`);
    const whole = read(input);
    expect(whole.records.map(([fields, line]) => [fields.join(',').length, line])).toEqual([
      [1, 1], [5000, 2], [3, 3], [5001, 4], [1, 5], [2, 6], [1, 7], [1, 8],
    ]);
    // Every cut near something but an x, alone and with a second such cut.
    const near = [...input.keys()].filter((i) => [-2, -1, 0, 1, 2].some((d) => input[i + d] !== undefined && input[i + d] !== 0x78));
    for (const a of near) {
      expect(read(input, [a], 1 << 20, () => true)).toEqual(whole);
      for (const b of near.filter((b) => b > a && b % 3 === 0)) expect(read(input, [a, b], 1 << 20, everyOther)).toEqual(whole);
    }
  });

  it('reads a record spread over many chunks, a byte at a time, as it reads it whole', () => {
    const input = Buffer.from(`h1,h2\r\n1,"${'say ""hi""\r\n'.repeat(50)}é"\r\n${'x'.repeat(5000)},"a"\r2,b\r`);
    const whole = read(input);
    expect(whole.records.map(([fields, line]) => [fields[1]!.length, line])).toEqual([
      [2, 1],
      [50 * 10 + 1, 2],
      [1, 53],
      [1, 54],
    ]);
    const byteAtATime = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
    expect(read(input, byteAtATime)).toEqual(whole);
    expect(read(input, byteAtATime, 1 << 20, () => true)).toEqual(whole);
  });

  it('agrees with csv-parse on records and fault kinds over random LF and CRLF inputs, cut into random chunks', () => {
    const kinds: Record<string, string> = {
      CSV_QUOTE_NOT_CLOSED: 'unclosed-quote',
      CSV_INVALID_CLOSING_QUOTE: 'invalid-closing-quote',
      INVALID_OPENING_QUOTE: 'invalid-opening-quote',
    };
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 3000; i++) {
      const eol = i % 2 ? '\r\n' : '\n';
      const tokens = ['a', 'bc', ',', '"', '""', eol, 'é', ' '];
      const input = Array.from({ length: 1 + next(12) }, () => tokens[next(tokens.length)]).join('');
      let expected: unknown;
      try {
        expected = { records: parse(input, { bom: true, relax_column_count: true }) };
      } catch (e) {
        const { code, index } = e as { code: string; index: number };
        expected = { code: kinds[code], column: index + 1 };
      }
      const bytes = Buffer.from(input);
      const cuts = Array.from({ length: next(4) }, () => next(bytes.length + 1)).sort((a, b) => a - b);
      const outcome = (offer?: Offer): unknown => {
        try {
          return { records: read(bytes, cuts, 1 << 20, offer).records };
        } catch (e) {
          if (!(e instanceof CsvSyntaxError)) throw e;
          return { code: e.code, line: e.line, column: e.column };
        }
      };
      const actual = outcome();
      const { records, code, column } = actual as { records?: Read['records']; code?: string; column?: number };
      expect(records ? { records: records.map(([fields]) => fields) } : { code, column }, JSON.stringify(input)).toEqual(expected);
      expect(outcome(everyOther), JSON.stringify(input)).toEqual(actual);
    }
  });
});
