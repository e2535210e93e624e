/**
 * The files of one `POST /upload` request, one after another as they stream:
 * the parts named `file` of a multipart/form-data body, or a whole CSV body.
 * Nothing here buffers a file, but for a CSV body small enough to hold
 * (HELD_UPLOAD_BYTES, by its declared length): read whole, it is checked in
 * one call instead of passing through a stream stage per step.
 */
import busboy from 'busboy';
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { IngestLimits } from '../core/config.js';
import type { BodySource } from '../core/http.js';
import { Problem } from '../core/problem.js';
import { gunzip, isGzipPart, isGzipType, refuseUndeclaredGzip, requestIsGzip, undeclaredGzipIn } from './decode.js';
import { clientOutcome, malformedMultipart } from './errors.js';
import { declaredLength, type ByteBudget } from './limits.js';
import { HELD_UPLOAD_BYTES, type FileBody } from './store-upload.js';

export interface IncomingFile {
  body: FileBody;
  fileName?: string;
  contentType: string;
}

export interface Budgets {
  wire: ByteBudget;
  decompressed: ByteBudget;
}

/** Types a CSV arrives as: browsers send `.csv` files as application/vnd.ms-excel on Windows. */
const CSV_TYPES = new Set(['text/csv', 'application/csv', 'text/plain', 'application/octet-stream', 'application/vnd.ms-excel']);

function mediaType(headerValue: string | undefined): { type: string; charset?: string } {
  const [type = '', ...params] = (headerValue ?? '').split(';').map((p) => p.trim());
  const charset = params.map((p) => /^charset="?([^"]*)"?$/i.exec(p)?.[1]).find(Boolean);
  return { type: type.toLowerCase(), ...(charset ? { charset: charset.toLowerCase() } : {}) };
}

const unsupported = (got: string): Problem =>
  new Problem(415, 'unsupported-media-type', 'Unsupported Media Type', `Send multipart/form-data with a "file" field, or a text/csv body (UTF-8, optionally gzip); got ${got || 'no Content-Type'}.`);

function checkCsvType(headerValue: string | undefined): { gzip: boolean; type: string } {
  const { type, charset } = mediaType(headerValue);
  if (charset && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') throw unsupported(headerValue ?? '');
  if (isGzipType(type)) return { gzip: true, type };
  if (CSV_TYPES.has(type)) return { gzip: false, type };
  throw unsupported(headerValue ?? '');
}

/** What turns a file's bytes into its CSV: gunzip when it says it is gzip, and a check that it is not gzip still. */
const decoding = (gzip: boolean, budgets: Budgets): Transform[] => [...(gzip ? gunzip(budgets.decompressed) : []), refuseUndeclaredGzip()];

/** Whether the body still has the request's own gzip coding on it. */
const isCoded = (headers: IncomingHttpHeaders, body: BodySource): boolean => !body.decoded && requestIsGzip(headers);

/** The body as the CSV or multipart bytes: the request's own gzip coding undone and every byte metered. */
function decodedBody(coded: boolean, body: BodySource, budgets: Budgets, fail: (e: Error) => void): Readable {
  const stages = [body.stream(), budgets.wire.meter(), ...(coded ? gunzip(budgets.decompressed) : [])];
  return pipeline(stages as [Readable, Transform], (e) => e && fail(e)) as unknown as Readable;
}

/** A CSV body, not gzip, read whole; refused if it is gzip after all. */
async function wholeBody(body: BodySource, wire: ByteBudget): Promise<Buffer> {
  // Metered as it comes: the rate watch reads the count.
  const bytes = await body.readWhole((n) => wire.take(n));
  const gzip = undeclaredGzipIn(bytes);
  if (gzip) throw gzip;
  return bytes;
}

/**
 * Calls `onFile` for each file in turn and resolves with the results once the
 * body is consumed. `fail` is how a request-level failure (a malformed body,
 * too many files) stops the whole request; the caller tears the body down.
 */
export function forEachFile<T>(
  headers: IncomingHttpHeaders,
  body: BodySource,
  limits: Pick<IngestLimits, 'maxFilesPerRequest'>,
  budgets: Budgets,
  fail: (e: Error) => void,
  onFile: (file: IncomingFile) => Promise<T>,
): Promise<T[]> {
  const { type } = mediaType(headers['content-type']);
  if (type !== 'multipart/form-data') {
    const { gzip, type: csvType } = checkCsvType(headers['content-type']);
    const coded = isCoded(headers, body);
    const size = body.whole?.length ?? declaredLength(headers);
    if (!gzip && !coded && size !== undefined && size <= HELD_UPLOAD_BYTES) {
      return wholeBody(body, budgets.wire).then((bytes) => onFile({ body: { bytes }, contentType: csvType }).then((r) => [r]));
    }
    const stream = decodedBody(coded, body, budgets, fail);
    return onFile({ body: { stream, decoders: decoding(gzip, budgets) }, contentType: csvType }).then((r) => [r]);
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers, limits: { files: limits.maxFilesPerRequest, fields: 100, fieldSize: 64 * 1024, headerPairs: 100 } });
    } catch (e) {
      return reject(malformedMultipart(e as Error));
    }
    // Busboy finishes only once every file stream it gave out has ended; a file whose upload failed
    // never will, so the parser itself must be torn down with the failure.
    const stop = (e: Error): void => {
      fail(e);
      parser.destroy(e);
    };
    const results: Promise<T>[] = [];
    parser.on('file', (field, stream, info) => {
      // A part fails only along with the parser, whose failure the pipeline below reports;
      // unheard, the part's own error would be thrown out of the process.
      stream.on('error', () => undefined);
      if (field !== 'file') return void stream.resume();
      let gzip: boolean;
      try {
        gzip = isGzipPart(info.mimeType, info.filename) || checkCsvType(info.mimeType).gzip;
      } catch (e) {
        stream.resume();
        return stop(e as Error);
      }
      const result = onFile({ body: { stream, decoders: decoding(gzip, budgets) }, contentType: info.mimeType, ...(info.filename ? { fileName: info.filename } : {}) });
      result.catch(stop);
      results.push(result);
    });
    parser.on('filesLimit', () =>
      stop(new Problem(413, 'too-many-files', 'Too many files', `At most ${limits.maxFilesPerRequest} files may be sent in one request.`, { limit: limits.maxFilesPerRequest })),
    );
    pipeline(decodedBody(isCoded(headers, body), body, budgets, fail), parser, (e) => {
      if (e) {
        // Only busboy fails in its own words here; the other streams fail with what they already classify.
        fail(clientOutcome(e) ? e : malformedMultipart(e));
        return reject(e);
      }
      if (results.length === 0) return reject(new Problem(400, 'no-file', 'No file', 'Send the CSV as a multipart form field named "file", or as a text/csv body.'));
      Promise.all(results).then(resolve, reject);
    });
  });
}
