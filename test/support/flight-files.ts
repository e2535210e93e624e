/**
 * Large flight files streamed to disk, never held in memory: an upload as a
 * client sends it, and the canonical CSV ingest writes (the generator's lines
 * are already in schema order and canonical form, so appending the source
 * line is all it takes: a test puts a million rows in the warehouse in a
 * second or two without the validator).
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CANONICAL_HEADER, COLUMNS } from '../../functions/core/schema.js';
import { flightLines, KAGGLE_HEADER } from './generate-flights.js';

if (KAGGLE_HEADER !== COLUMNS.map((c) => c.name).join(',')) throw new Error('the generator no longer writes the schema order');

/** `header`, then each generated row as `row(line, text)` makes it (the first data line is line 2); 64 KiB at a time. */
async function writeLines(file: string, header: string, count: number, seed: number, row: (line: number, text: string) => string): Promise<void> {
  async function* chunks(): AsyncGenerator<string> {
    let chunk = `${header}\n`;
    let line = 2;
    for (const text of flightLines(count, seed)) {
      chunk += `${row(line++, text)}\n`;
      if (chunk.length > 1 << 16) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}

export const writeCanonicalFlights = (file: string, count: number, seed = 1): Promise<void> =>
  writeLines(file, CANONICAL_HEADER.join(','), count, seed, (line, text) => `${text},${line}`);

/** A file as a client uploads it (the Kaggle export's layout); `edit` may spoil chosen lines. */
export const writeFlightsCsv = (file: string, count: number, seed = 1, edit: (line: number, text: string) => string = (_l, t) => t): Promise<void> =>
  writeLines(file, KAGGLE_HEADER, count, seed, edit);
