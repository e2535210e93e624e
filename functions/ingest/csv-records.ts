/**
 * A streaming RFC 4180 reader: UTF-8 bytes in, records (arrays of field
 * strings) out, each with the line where it starts. Written for the ingest
 * path because csv-parse spent half of the validation time decoding field by
 * field; here each chunk is decoded once and fields are cut out of that string.
 * A caller that can check a plain line on its bytes (`plainLine`) is offered
 * each one before anything is decoded: most lines of a flights file then cost
 * no string at all.
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
   * A record that is one line with no quote and no CR: `bytes[start, end)`,
   * without its line end, whose fields are what lies between its commas. It is
   * offered before it is decoded, once the first record has been read (a BOM
   * is dropped there); returns whether the sink took it. One it does not take
   * (its bytes may not even be UTF-8) is decoded, split and given to `record`.
   */
  plainLine?(bytes: Buffer, start: number, end: number, line: number): boolean;
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;
/**
 * A quote-free line cut by the end of a chunk is kept whole, so the next chunk
 * reads it on the fast path; a longer one is read on as an unfinished record.
 * Small, because the kept text is searched again with each chunk.
 */
const CARRY_CHARS = 4096;
/** The same for a line cut by the end of a chunk while plain lines are read as bytes: it waits for the next chunk. */
const CARRY_BYTES = 4096;

/** A record cut by the end of the text so far: what is read of it, to go on from with the next chunk. */
interface Unfinished {
  fields: string[];
  /** The current field's text so far; undefined before its first character. */
  value: string | undefined;
  /** Inside a quoted field whose closing quote has not been read. */
  quoted: boolean;
  /** Line feeds inside quoted fields. */
  breaks: number;
  /** Characters of the record in earlier text. */
  chars: number;
}

export class CsvRecords {
  /** Decoded text not yet consumed. */
  private text = '';
  /** Line where the next record starts. */
  private line = 1;
  private started = false;
  /** The record being read when the text ran out: every character is read once, however the chunks fall. */
  private unfinished?: Unfinished;
  /** The last record ended with a CR at the end of the text: an LF starting the next text belongs to it. */
  private afterCr = false;
  private readonly decoder = new StringDecoder('utf8');
  /** The start of a line cut by the end of the last chunk, held as bytes while plain lines are offered. */
  private carry?: Buffer;

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
    const plainLine = this.sink.plainLine;
    if (!plainLine) return this.readText(chunk);
    const carry = this.carry;
    this.carry = undefined;
    if (!carry) return this.readBytes(chunk, plainLine);
    // The line the last chunk cut is completed and read on its own, so the rest of this chunk is read where it lies.
    const head = chunk.indexOf(LF) + 1 || chunk.length;
    this.readBytes(Buffer.concat([carry, chunk.subarray(0, head)]), plainLine);
    if (head < chunk.length) this.readBytes(chunk.subarray(head), plainLine);
  }

  /** Reads the last record, which needs no line end; throws CsvSyntaxError. */
  end(): void {
    if (this.carry) this.readText(this.carry);
    this.carry = undefined;
    this.append(this.decoder.end());
    this.consume(true);
  }

  /** Decodes `bytes` and reads on in the text: how every record but an offered plain line is read. */
  private readText(bytes: Buffer): void {
    this.append(this.decoder.write(bytes));
    this.consume(false);
  }

  /**
   * Nothing is held in the text path, so the next line can be read as bytes.
   * It is given whole lines, or a long rest of a chunk, which leaves it inside
   * a record, holding text, or after a CR: so its decoder holds nothing either.
   */
  private get betweenRecords(): boolean {
    return this.started && !this.unfinished && !this.afterCr && this.text === '';
  }

  /**
   * Offers each line with no quote and no CR (but the CR of a CRLF) to the
   * sink; a line it does not take goes to the text path, which reads on alone
   * while a record it started goes on. The text path is given whole lines
   * only, so that it is left with nothing held whenever its record has ended.
   */
  private readBytes(bytes: Buffer, plainLine: NonNullable<RecordSink['plainLine']>): void {
    const n = bytes.length;
    let p = 0;
    // Next positions of a quote and a CR at or after p; n when there is none.
    let quote = -1;
    let cr = -1;
    while (p < n) {
      if (!this.betweenRecords) {
        // The first line (where a BOM would be) alone; or, inside a record, all the lines it may span.
        const last = this.started ? bytes.lastIndexOf(LF) : bytes.indexOf(LF, p);
        if (last < p) break;
        this.readText(bytes.subarray(p, last + 1));
        p = last + 1;
        continue;
      }
      const nl = bytes.indexOf(LF, p);
      if (nl === -1) break;
      if (quote < p) quote = indexOr(bytes, QUOTE, p, n);
      if (cr < p) cr = indexOr(bytes, CR, p, n);
      const end = cr === nl - 1 ? cr : nl;
      if (quote > nl && cr >= end && end - p <= this.maxRecordChars && plainLine(bytes, p, end, this.line)) this.line += 1;
      else this.readText(bytes.subarray(p, nl + 1));
      p = nl + 1;
    }
    if (p === n) return;
    // What follows the last line end waits for the next chunk, unless it is long: then the text path reads it as far as it goes.
    if (n - p <= CARRY_BYTES) this.carry = Buffer.from(bytes.subarray(p));
    else this.readText(bytes.subarray(p));
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
    if (this.afterCr && n > 0) {
      this.afterCr = false;
      if (s.charCodeAt(0) === LF) p = 1;
    }
    if (this.unfinished) p = this.scanRecord(s, p, final);
    // Next positions of each special character at or after p; n when there is none.
    let nl = -1;
    let cr = -1;
    let quote = -1;
    while (p < n && !this.unfinished) {
      if (nl < p) nl = indexOr(s, '\n', p, n);
      if (cr < p) cr = indexOr(s, '\r', p, n);
      if (quote < p) quote = indexOr(s, '"', p, n);
      const end = cr === nl - 1 ? cr : nl;
      if (nl < n && quote > nl && cr >= end && end - p <= this.maxRecordChars) {
        this.sink.record(s.slice(p, end).split(','), this.line);
        this.line += 1;
        p = nl + 1;
        continue;
      }
      if (!final && nl === n && quote === n && cr === n && n - p <= CARRY_CHARS) break;
      p = this.scanRecord(s, p, final);
    }
    this.text = p < n ? s.slice(p) : '';
  }

  /**
   * Reads one record from `start`, or goes on with the unfinished one, and
   * returns where the text after it starts. When the text ends inside the
   * record, what is read is kept in `unfinished` and the position returned is
   * where reading resumes (a quote that may be the first of a pair, or the end).
   */
  private scanRecord(s: string, start: number, final: boolean): number {
    const n = s.length;
    const r = this.unfinished ?? { fields: [], value: undefined, quoted: false, breaks: 0, chars: 0 };
    this.unfinished = undefined;
    // Where the record would pass the bound, in this text's positions.
    const limit = start - r.chars + this.maxRecordChars;
    const fault = (code: CsvSyntaxCode): CsvSyntaxError => new CsvSyntaxError(code, this.line, r.fields.length + 1);
    const suspend = (at: number): number => {
      r.chars += at - start;
      this.unfinished = r;
      return at;
    };
    // The next line feed at or after the part of the text counted so far, so each is found once.
    let lf = -1;
    const lineFeeds = (from: number, to: number): number => {
      let count = 0;
      if (lf < from) lf = indexOr(s, '\n', from, n);
      for (; lf < to; lf = indexOr(s, '\n', lf + 1, n)) count++;
      return count;
    };
    let p = start;
    for (;;) {
      if (r.value === undefined) {
        if (p === n && !final) return suspend(p);
        r.quoted = s.charCodeAt(p) === QUOTE;
        r.value = '';
        if (r.quoted) p += 1;
      }
      if (r.quoted) {
        // The field's text is taken as it is, doubled quotes and all, and undoubled once it is closed:
        // a piece of it ends only where no pair is cut (the end of the text, or before a quote kept for later).
        const from = p;
        for (;;) {
          const q = s.indexOf('"', p);
          const stop = q === -1 ? n : q;
          if (stop >= limit) throw fault('record-too-long'); // the closing quote, at stop or later, would be past the bound
          r.breaks += lineFeeds(p, stop);
          if (q === -1 || (q === n - 1 && !final)) {
            if (!final) {
              r.value += s.slice(from, stop);
              return suspend(stop);
            }
            throw fault('unclosed-quote');
          }
          if (s.charCodeAt(q + 1) !== QUOTE) {
            r.value += s.slice(from, q);
            p = q + 1;
            break;
          }
          p = q + 2;
        }
        if (r.value.includes('"')) r.value = r.value.replaceAll('""', '"');
        r.quoted = false;
        const c = s.charCodeAt(p);
        if (p < n && c !== COMMA && c !== LF && c !== CR) throw fault('invalid-closing-quote');
      } else {
        let e = p;
        for (; e < n; e++) {
          const c = s.charCodeAt(e);
          if (c === COMMA || c === LF || c === CR) break;
          if (c === QUOTE) throw fault('invalid-opening-quote');
        }
        if (e > limit) throw fault('record-too-long');
        r.value += s.slice(p, e);
        p = e;
        if (p === n && !final) return suspend(p);
      }
      r.fields.push(r.value);
      r.value = undefined;
      // p is at the field's end: a comma, a line end, or the end of the last text.
      if (p === n) return this.emit(r, n);
      const c = s.charCodeAt(p);
      if (c === COMMA) {
        p += 1;
        continue;
      }
      if (c === LF) return this.emit(r, p + 1);
      if (p + 1 < n) return this.emit(r, s.charCodeAt(p + 1) === LF ? p + 2 : p + 1);
      // A CR at the end of the text ends the record; whether an LF follows is for the next text to say.
      this.afterCr = true;
      return this.emit(r, n);
    }
  }

  private emit(r: Unfinished, next: number): number {
    this.sink.record(r.fields, this.line);
    this.line += 1 + r.breaks;
    return next;
  }
}

function indexOr(s: string, c: string, from: number, none: number): number;
function indexOr(s: Buffer, c: number, from: number, none: number): number;
function indexOr(s: string | Buffer, c: string | number, from: number, none: number): number {
  const at = typeof s === 'string' ? s.indexOf(c as string, from) : s.indexOf(c, from);
  return at === -1 ? none : at;
}
