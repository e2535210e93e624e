import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { CsvValidator } from '../../functions/ingest/validator.js';

/** The canonical CSV ingest writes for `csv`: what the loader reads. */
export const canonicalOf = (csv: string): Promise<string> => text(Readable.from([csv]).pipe(new CsvValidator()));
