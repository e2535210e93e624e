/**
 * The hostile-input corpus, through the real HTTP pipeline: every file gets
 * its documented 4xx with the fault located, nothing is stored anywhere, and
 * the server keeps serving.
 */
import fs from 'node:fs';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightLines, KAGGLE_HEADER } from '../support/generate-flights.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { multipart, names, send, type Reply } from './http.js';

interface Case {
  file: string;
  status: number;
  type: string;
  line?: number;
  column?: number;
  field?: string;
  send?: { mode?: 'raw' | 'multipart'; contentType?: string; fileName?: string; field?: string; headers?: Record<string, string> };
  why: string;
}

const dir = new URL('../fixtures/bad/', import.meta.url);
const manifest = JSON.parse(fs.readFileSync(new URL('expected.json', dir), 'utf8')) as Case[];
const [row] = [...flightLines(1)];
const withField = (column: number, value: string): string => row!.split(',').map((v, i) => (i === column - 1 ? value : v)).join(',');

/**
 * Limits small enough to reach in a test; the big inputs are generated here
 * rather than committed. The decompressed bound is far below the row bound so
 * that the bomb, valid rows all along, is stopped by the bound under test.
 */
const ENV = { MAX_UPLOAD_BYTES: String(12 * 2 ** 20), MAX_DECOMPRESSED_BYTES: String(64 * 1024), MAX_ROWS: '1000', MAX_FILES_PER_REQUEST: '3' };
const bomb = (): Buffer => {
  const rows = Buffer.from(`${row}\n`.repeat(Math.ceil(2 ** 20 / (row!.length + 1))));
  return gzipSync(Buffer.concat([Buffer.from(`${KAGGLE_HEADER}\n`), ...Array.from({ length: 64 }, () => rows)]), { level: 9 });
};
const generated: (Case & { data: () => Buffer; chunked?: boolean; detail?: RegExp })[] = [
  {
    file: '(generated) 10 MB single field', status: 422, type: '/problems/invalid-csv', line: 2, column: 13, why: 'a field past the record-size bound',
    data: () => Buffer.from(`${KAGGLE_HEADER}\n${withField(13, 'N'.repeat(10 * 2 ** 20))}\n`),
  },
  {
    file: '(generated) 100 KB field', status: 422, type: '/problems/invalid-csv', line: 2, column: 21, field: 'name', why: 'a cell over MAX_FIELD_CHARS',
    data: () => Buffer.from(`${KAGGLE_HEADER}\n${withField(21, 'x'.repeat(100_000))}\n`),
  },
  {
    file: '(generated) zip bomb', status: 413, type: '/problems/too-large', detail: /decompressed/, why: '64 MiB of valid rows in 200 KB of gzip, over MAX_DECOMPRESSED_BYTES',
    send: { headers: { 'content-encoding': 'gzip' } },
    data: bomb,
  },
  {
    // The whole body has arrived before the file fails: the multipart parser must still be torn down.
    file: '(generated) zip bomb as a .csv.gz part', status: 413, type: '/problems/too-large', detail: /decompressed/, why: 'the same, inside multipart',
    send: { mode: 'multipart', fileName: 'bomb.csv.gz' },
    data: bomb,
  },
  {
    file: '(generated) 1001 rows', status: 413, type: '/problems/too-large', line: 1002, why: 'over MAX_ROWS',
    data: () => Buffer.from([KAGGLE_HEADER, ...flightLines(1001)].join('\n') + '\n'),
  },
  {
    file: '(generated) 13 MiB body', status: 413, type: '/problems/too-large', why: 'Content-Length over MAX_UPLOAD_BYTES',
    data: () => Buffer.alloc(13 * 2 ** 20, 'a'),
  },
  {
    // Rows with faults (over-long names) do not stop the stream, so the byte count is what ends it.
    file: '(generated) 13 MiB chunked body', status: 413, type: '/problems/too-large', why: 'no Content-Length: counted while streaming',
    data: () => Buffer.from([KAGGLE_HEADER, ...Array.from({ length: 1000 }, () => withField(21, 'x'.repeat(14_000)))].join('\n') + '\n'),
    chunked: true,
  },
  {
    file: '(generated) four files', status: 413, type: '/problems/too-many-files', why: 'over MAX_FILES_PER_REQUEST',
    send: { mode: 'multipart' }, data: () => Buffer.alloc(0),
  },
  {
    file: '(generated) truncated multipart', status: 400, type: '/problems/malformed-multipart', why: 'the closing boundary never comes',
    send: { mode: 'multipart' }, data: () => Buffer.alloc(0),
  },
];

async function upload(url: string, c: Case, data: Buffer, chunked = false): Promise<Reply> {
  const { mode = 'raw', contentType, fileName, field, headers = {} } = c.send ?? {};
  if (mode === 'raw') return send(url, data, { 'content-type': contentType ?? 'text/csv', ...headers }, { chunked });
  if (c.type === '/problems/too-many-files') {
    const csv = Buffer.from(`${KAGGLE_HEADER}\n${row}\n`);
    const form = multipart([1, 2, 3, 4].map((i) => ({ fileName: `f${i}.csv`, data: csv })));
    return send(url, form.body, { 'content-type': form.contentType });
  }
  const form = multipart([{ data, ...(field ? { field } : {}), fileName: fileName ?? c.file, ...(contentType ? { contentType } : {}) }]);
  const body = c.type === '/problems/malformed-multipart' ? form.body.subarray(0, form.body.length - 20) : form.body;
  return send(url, body, { 'content-type': form.contentType, ...headers });
}

// Validation on the main thread, and on a worker thread (the same answers, the same nothing left behind):
// with VALIDATION_THREAD_MIN_BYTES=0 every file goes to the thread, small as the corpus's are.
describe.each(['0', '1'])('the bad-file corpus through POST /upload, VALIDATION_THREADS=%s', (threads) => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline({ env: { ...ENV, VALIDATION_THREADS: threads, VALIDATION_THREAD_MIN_BYTES: '0' } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('has at least 30 committed files, each listed in expected.json', () => {
    const files = fs.readdirSync(dir).filter((f) => f !== 'expected.json');
    expect(files.length).toBeGreaterThanOrEqual(30);
    expect(new Set(manifest.map((c) => c.file))).toEqual(new Set(files));
  });

  const cases = [...manifest.map((c) => ({ ...c, data: () => fs.readFileSync(new URL(c.file, dir)), chunked: false })), ...generated];
  it.each(cases)('$file → $status ($why)', async (c) => {
    const res = await upload(p.url, c, c.data(), c.chunked);
    expect(res.status).toBe(c.status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: c.type, status: c.status, title: expect.any(String), detail: expect.any(String) });
    if ('detail' in c && c.detail) expect(res.body.detail).toMatch(c.detail);
    if (c.line !== undefined) {
      const first = res.body.errors[0];
      expect(first.line).toBe(c.line);
      expect(first.column).toBe(c.column);
      if (c.field) expect(first.field).toBe(c.field);
      expect(res.body.errorCount).toBeGreaterThanOrEqual(1);
    }
    if (c.send?.fileName && res.body.file !== undefined) expect(res.body.file).not.toMatch(/[/\\\u0000-\u001f]/);
    for (const prefix of ['incoming/', 'staging/', 'uploads/', 'idempotency/']) expect(await names(p.rt.store, prefix)).toEqual([]);
  });

  it('leaves no partial object bytes behind and keeps serving: a valid upload afterwards is stored', async () => {
    const tmp = new URL(`file://${p.dataDir}/buckets/flights-local/tmp/`);
    expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
    const csv = `${KAGGLE_HEADER}\n${row}\n`;
    const res = await request(p.url).post('/upload').attach('file', Buffer.from(csv), 'ok.csv');
    expect(res.status).toBe(201);
    expect(await names(p.rt.store, 'incoming/')).toEqual([res.body.object]);
  });
});
