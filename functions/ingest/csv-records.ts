/**
 * A streaming RFC 4180 reader: UTF-8 bytes in, records (arrays of field
 * strings) out, each with the line where it starts. Written for the ingest
 * path because csv-parse spent half of the validation time decoding field by
 * field; here each chunk is decoded once and fields are cut out of that string.
 *
 * Strict like csv-parse's defaults: a quote may only open a field, a closing
 * quote must be followed by a comma or a line end, and a quote left open is an
 * error at the line where its record started. Line ends are LF, CRLF or a bare
 * CR; a CR or LF inside quotes is data. A leading UTF-8 BOM is dropped. Blank
 * lines come out as `['']`, as csv-parse gives them, and are the caller's to skip.
 */
import { StringDecoder } from 'node:string_decoder';

export type CsvSyntaxCode = 'unclosed-quote' | 'invalid-closing-quote' | 'invalid-opening-quote' | 'record-too-long';

export class CsvSyntaxError extends Error {
  override readonly name = 'CsvSyntaxError';
  constructor(
    readonly code: CsvSyntaxCode,
    /** The line where the faulty record starts. */
    readonly line: number,
    /** 1-based index of the field where the fault is. */
    readonly column: number,
  ) {
    super(`${code} at line ${line}, field ${column}`);
  }
}

export interface RecordSink {
  record(fields: string[], line: number): void;
  /**
   * A record that is one line with no quote and no CR, given without its line
   * end: its fields are `text.split(',')`. Lets the caller check it in place;
   * without it, the record is split and given to `record`.
   */
  plainLine?(text: string, line: number): void;
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;
/** Returned by the slow path when the buffered text ends inside a record. */
const INCOMPLETE = -1;

export class CsvRecords {
  /** Decoded text not yet consumed: the start of an incomplete record. */
  private text = '';
  /** Line where `text` starts. */
  private line = 1;
  private started = false;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    /** Longest record, in characters without its line end. */
    private readonly maxRecordChars: number,
    private readonly sink: RecordSink,
  ) {}

  /** The line after the last record read: where an error about the end of the file points. */
  get nextLine(): number {
    return this.line;
  }

  /** Reads every complete record in `chunk` (plus what was left over); throws CsvSyntaxError. */
  write(chunk: Buffer): void {
    this.append(this.decoder.write(chunk));
    this.consume(false);
  }

  /** Reads the last record, which needs no line end; throws CsvSyntaxError. */
  end(): void {
    this.append(this.decoder.end());
    this.consume(true);
  }

  private append(decoded: string): void {
    if (!decoded) return;
    if (!this.started) {
      this.started = true;
      if (decoded.charCodeAt(0) === 0xfeff) decoded = decoded.slice(1);
    }
    this.text = this.text ? this.text + decoded : decoded;
  }

  /**
   * The fast path takes a whole line with no quote and no bare CR, to be split
   * on commas; anything else goes through `scanRecord`, one record at a time.
   */
  private consume(final: boolean): void {
    const s = this.text;
    const n = s.length;
    let p = 0;
    // Next positions of each special character at or after p; n when there is none.
    let nl = -1;
    let cr = -1;
    let quote = -1;
    while (p < n) {
      if (nl < p) nl = indexOr(s, '\n', p, n);
      if (cr < p) cr = indexOr(s, '\r', p, n);
      if (quote < p) quote = indexOr(s, '"', p, n);
      const end = cr === nl - 1 ? cr : nl;
      if (nl < n && quote > nl && cr >= end && end - p <= this.maxRecordChars) {
        const text = s.slice(p, end);
        if (this.sink.plainLine) this.sink.plainLine(text, this.line);
        else this.sink.record(text.split(','), this.line);
        this.line += 1;
        p = nl + 1;
        continue;
      }
      const next = this.scanRecord(s, p, final);
      if (next === INCOMPLETE) break;
      p = next;
    }
    this.text = p < n ? s.slice(p) : '';
  }

  /** Reads one record from `start`; returns where the next one starts, or INCOMPLETE. */
  private scanRecord(s: string, start: number, final: boolean): number {
    const n = s.length;
    const limit = start + this.maxRecordChars;
    const fields: string[] = [];
    let breaks = 0; // line feeds inside quoted fields
    let p = start;
    const tooLong = (): CsvSyntaxError => new CsvSyntaxError('record-too-long', this.line, fields.length + 1);
    for (;;) {
      let value: string;
      if (s.charCodeAt(p) === QUOTE) {
        value = '';
        let from = p + 1;
        for (;;) {
          const q = s.indexOf('"', from);
          const stop = q === -1 ? n : q;
          if (stop >= limit) throw tooLong(); // the closing quote, at stop or later, would be past the bound
          breaks += countLineFeeds(s, from, stop);
          if (q === -1 || (q === n - 1 && !final)) {
            if (!final) return INCOMPLETE;
            throw new CsvSyntaxError('unclosed-quote', this.line, fields.length + 1);
          }
          if (s.charCodeAt(q + 1) === QUOTE) {
            value += s.slice(from, q + 1);
            from = q + 2;
            continue;
          }
          value += s.slice(from, q);
          p = q + 1;
          break;
        }
        const c = s.charCodeAt(p);
        if (p < n && c !== COMMA && c !== LF && c !== CR) throw new CsvSyntaxError('invalid-closing-quote', this.line, fields.length + 1);
      } else {
        let e = p;
        for (; e < n; e++) {
          const c = s.charCodeAt(e);
          if (c === COMMA || c === LF || c === CR) break;
          if (c === QUOTE) throw new CsvSyntaxError('invalid-opening-quote', this.line, fields.length + 1);
        }
        if (e > limit) throw tooLong();
        value = s.slice(p, e);
        p = e;
      }
      fields.push(value);
      // p is at the field's end: a comma, a line end, or the end of the text.
      if (p === n) {
        if (!final) return INCOMPLETE;
        return this.emit(fields, breaks, n);
      }
      const c = s.charCodeAt(p);
      if (c === COMMA) {
        p += 1;
        continue;
      }
      if (c === LF) return this.emit(fields, breaks, p + 1);
      // CR: a CRLF, a bare CR, or (at the end of the text) not known yet.
      if (p + 1 < n) return this.emit(fields, breaks, s.charCodeAt(p + 1) === LF ? p + 2 : p + 1);
      if (!final) return INCOMPLETE;
      return this.emit(fields, breaks, n);
    }
  }

  private emit(fields: string[], breaks: number, next: number): number {
    this.sink.record(fields, this.line);
    this.line += 1 + breaks;
    return next;
  }
}

function indexOr(s: string, c: string, from: number, none: number): number {
  const at = s.indexOf(c, from);
  return at === -1 ? none : at;
}

function countLineFeeds(s: string, from: number, to: number): number {
  let count = 0;
  for (let at = s.indexOf('\n', from); at !== -1 && at < to; at = s.indexOf('\n', at + 1)) count++;
  return count;
}
