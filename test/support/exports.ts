/** Client side of an export, as a test drives it: start, wait, and stream its rows back. */
import { parse } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { createGunzip, gunzipSync } from 'node:zlib';
import request from 'supertest';
import { QUERYABLE_COLUMNS } from '../../functions/core/schema.js';
import { eventually, tempDir } from './pipeline.js';

export interface ExportStatus {
  exportId: string;
  status: 'running' | 'done' | 'failed';
  columns: string[];
  rows?: number;
  files?: { name: string; bytes: number; url: string; expiresAt: string }[];
  reason?: string;
}

/** POSTs the export and polls its Location until it is no longer running. */
export async function runExport(baseUrl: string, query: string, timeoutMs = 60_000): Promise<ExportStatus> {
  const started = await request(baseUrl).post(`/exports${query ? `?${query}` : ''}`);
  if (started.status !== 202) throw new Error(`POST /exports answered ${started.status}: ${started.text}`);
  return eventually(
    async () => {
      const res = await request(baseUrl).get(started.headers.location!);
      return res.body.status === 'running' ? undefined : (res.body as ExportStatus);
    },
    timeoutMs,
    'the export to finish',
  );
}

/**
 * Every row of the export's files, in order: each downloaded through its
 * signed URL to a temporary file first (so no download sits paused while the
 * caller does other requests), then parsed as it streams from disk.
 */
export async function* exportedRows(files: NonNullable<ExportStatus['files']>): AsyncGenerator<Record<string, string>> {
  const dir = await tempDir('flights-export-download-');
  try {
    for (const [i, file] of files.entries()) {
      const res = await fetch(file.url);
      if (!res.ok || !res.body) throw new Error(`download of ${file.name} answered ${res.status}`);
      const local = path.join(dir, `${i}.csv.gz`);
      await pipeline(Readable.fromWeb(res.body as ReadableStream), createWriteStream(local));
      yield* createReadStream(local).pipe(createGunzip()).pipe(parse({ columns: true }));
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The export's files as one table of cells: the header once, then every row (each shard repeats the header). */
export async function exportedCells(files: NonNullable<ExportStatus['files']>): Promise<string[][]> {
  const cells: string[][] = [];
  for (const file of files) {
    const res = await fetch(file.url);
    if (!res.ok) throw new Error(`download of ${file.name} answered ${res.status}`);
    const [header = [], ...rows] = parseCsv(gunzipSync(Buffer.from(await res.arrayBuffer()))) as string[][];
    if (!cells.length) cells.push(header);
    cells.push(...rows);
  }
  return cells;
}

/** Every row of a /getdata query, following its next links. */
export async function* pagedRows(baseUrl: string, path: string): AsyncGenerator<Record<string, unknown>> {
  let next: string | null = path;
  while (next) {
    const res = await request(baseUrl).get(next);
    if (res.status !== 200) throw new Error(`GET ${next} answered ${res.status}: ${res.text}`);
    yield* res.body.rows as Record<string, unknown>[];
    next = res.body.next;
  }
}

/** A CSV cell as the JSON value /getdata gives: NULL is an empty cell, numbers are numbers. */
export function fromCsvCell(column: string, cell: string): unknown {
  if (cell === '') return null;
  const type = QUERYABLE_COLUMNS.get(column);
  return type === 'integer' || type === 'number' ? Number(cell) : cell;
}

/**
 * Walks an export and a paged query side by side, holding one row of each at a
 * time; throws at the first difference. Returns how many rows matched.
 */
export async function sameRows(exported: AsyncIterable<Record<string, string>>, paged: AsyncIterator<Record<string, unknown>>, columns: string[]): Promise<number> {
  let n = 0;
  for await (const row of exported) {
    const page = await paged.next();
    const typed = JSON.stringify(Object.fromEntries(columns.map((c) => [c, fromCsvCell(c, row[c] ?? '')])));
    if (page.done) throw new Error(`the export has more rows than the pages: row ${n} is ${typed}`);
    if (typed !== JSON.stringify(page.value)) throw new Error(`row ${n} differs: exported ${typed}, paged ${JSON.stringify(page.value)}`);
    n += 1;
  }
  if (!(await paged.next()).done) throw new Error(`the pages have more rows than the export's ${n}`);
  return n;
}
