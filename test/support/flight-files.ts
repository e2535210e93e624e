/**
 * A large canonical CSV (what ingest writes and the loader reads), streamed
 * to disk without the validator: the generator's lines are already in schema
 * order and canonical form, so appending the source line is all it takes.
 * Lets a test put a million rows in the warehouse in a second or two.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CANONICAL_HEADER, COLUMNS } from '../../functions/core/schema.js';
import { flightLines, KAGGLE_HEADER } from './generate-flights.js';

if (KAGGLE_HEADER !== COLUMNS.map((c) => c.name).join(',')) throw new Error('the generator no longer writes the schema order');

export async function writeCanonicalFlights(file: string, count: number, seed = 1): Promise<void> {
  async function* lines(): AsyncGenerator<string> {
    let chunk = `${CANONICAL_HEADER.join(',')}\n`;
    let line = 2;
    for (const row of flightLines(count, seed)) {
      chunk += `${row},${line++}\n`;
      if (chunk.length > 1 << 16) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
  }
  await pipeline(Readable.from(lines()), createWriteStream(file));
}
