import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { chooseFormat, csvHeader, csvLine, ndjsonLine, serialize, serializer } from '../../functions/query/formats.js';
import { problemFrom } from './problems.js';

const columns = ['carrier', 'name', 'dep_delay'];
const rows = [
  { carrier: 'UA', name: 'United Air Lines Inc.', dep_delay: -2.5, extra: 'not asked for' },
  { carrier: 'B6', name: 'Foo, "Bar"\r\nBaz', dep_delay: null },
  { carrier: 'AA', name: '', dep_delay: 0 },
  { carrier: 'DL' },
];

const collect = async (chunks: AsyncIterable<string>) => {
  const out: string[] = [];
  for await (const c of chunks) out.push(c);
  return out;
};

describe('CSV', () => {
  it('quotes per RFC 4180, writes NULL as an empty field and an empty string as ""', () => {
    expect(csvHeader(columns)).toBe('carrier,name,dep_delay\r\n');
    expect(rows.map((r) => csvLine(r, columns)).join('')).toBe(
      'UA,United Air Lines Inc.,-2.5\r\n' + 'B6,"Foo, ""Bar""\r\nBaz",\r\n' + 'AA,"",0\r\n' + 'DL,,\r\n',
    );
  });

  it('streams a header and one line per row', async () => {
    expect((await collect(serialize('csv', rows, columns))).join('')).toBe(csvHeader(columns) + rows.map((r) => csvLine(r, columns)).join(''));
    expect(await collect(serialize('csv', [], columns))).toEqual([csvHeader(columns)]);
  });

  it('the Transform gives the same bytes, and a header even for no rows', async () => {
    expect(await text(Readable.from(rows).pipe(serializer('csv', columns)))).toBe((await collect(serialize('csv', rows, columns))).join(''));
    expect(await text(Readable.from([]).pipe(serializer('csv', columns)))).toBe(csvHeader(columns));
  });
});

describe('NDJSON', () => {
  it('writes one object per line with exactly the asked columns, NULL for missing ones', async () => {
    expect(ndjsonLine(rows[3]!, columns)).toBe('{"carrier":"DL","name":null,"dep_delay":null}\n');
    const out = await text(Readable.from(rows).pipe(serializer('ndjson', columns)));
    const lines = out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { carrier: 'UA', name: 'United Air Lines Inc.', dep_delay: -2.5 },
      { carrier: 'B6', name: 'Foo, "Bar"\r\nBaz', dep_delay: null },
      { carrier: 'AA', name: '', dep_delay: 0 },
      { carrier: 'DL', name: null, dep_delay: null },
    ]);
  });
});

describe('streaming', () => {
  it('pulls rows lazily and yields bounded chunks', async () => {
    let produced = 0;
    async function* many() {
      for (let i = 0; i < 20_000; i++) {
        produced++;
        yield { carrier: 'UA', name: `airline ${i}`, dep_delay: i };
      }
    }
    const chunks = serialize('ndjson', many(), columns);
    const first = await chunks.next();
    expect(first.done).toBe(false);
    expect(produced).toBeLessThan(20_000);
    const rest = await collect(chunks);
    expect(produced).toBe(20_000);
    for (const c of [first.value as string, ...rest]) expect(c.length).toBeLessThan(64 * 1024 + 200);
    expect([first.value, ...rest].join('').split('\n')).toHaveLength(20_001);
  });
});

describe('chooseFormat', () => {
  it.each([
    ['csv', 'application/json', 'csv'],
    ['ndjson', undefined, 'ndjson'],
    [undefined, undefined, 'json'],
    [null, '', 'json'],
    [undefined, '*/*', 'json'],
    [undefined, 'text/csv', 'csv'],
    [undefined, 'application/x-ndjson', 'ndjson'],
    [undefined, 'text/html, text/csv;q=0.9, application/json;q=0.8', 'csv'],
    [undefined, 'application/json;q=0.5, application/x-ndjson', 'ndjson'],
    [undefined, 'text/csv;q=0, */*;q=0.1', 'json'],
    [undefined, 'TEXT/CSV', 'csv'],
  ])('format=%s, Accept: %s → %s', (param, accept, format) => {
    expect(chooseFormat(param, accept)).toBe(format);
  });

  it('is 406 when nothing acceptable can be produced', () => {
    const p = problemFrom(() => chooseFormat(undefined, 'text/html, application/xml;q=0.9, text/csv;q=0'));
    expect(p.status).toBe(406);
    expect(p.extensions.allowed).toContain('text/csv');
  });

  it('is 400 for an unknown format parameter', () => {
    expect(problemFrom(() => chooseFormat('xlsx', undefined)).extensions).toEqual({ parameter: 'format', allowed: ['json', 'csv', 'ndjson'] });
  });
});
