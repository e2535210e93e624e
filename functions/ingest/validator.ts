/**
 * Validates an uploaded CSV while it streams and emits the canonical CSV
 * (schema columns in schema order plus the source line). Faults are collected
 * with line and column; a file with any fault fails at its end, so the object
 * being written is aborted and never finalized.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { IngestLimits } from '../core/config.js';
import { CANONICAL_HEADER, COLUMNS } from '../core/schema.js';
import type { CsvFault } from '../core/problem.js';
import { ByteOutput } from './byte-output.js';
import { canonicalCell, isValidDate } from './cells.js';
import { CsvRecords, CsvSyntaxError, type CsvSyntaxCode } from './csv-records.js';
import { mapHeader, type HeaderMap } from './header.js';
import { PlainRows } from './plain-rows.js';

export type ValidationLimits = Pick<IngestLimits, 'maxRows' | 'maxColumns' | 'maxFieldChars' | 'maxRecordChars'> & {
  /** Faults kept for the report; counting goes on to the end of the file. */
  maxFaults: number;
  /** Worker threads validation may use (off-thread-validator.ts); none when absent. */
  validationThreads?: number;
  /** Files declared smaller than this are validated on the main thread even with threads (0 or absent: none are). */
  validationThreadMinBytes?: number;
};

export const DEFAULT_LIMITS: ValidationLimits = { maxRows: 50_000_000, maxRecordChars: 1 << 20, maxFieldChars: 1 << 16, maxColumns: 100, maxFaults: 100 };

export class InvalidCsvError extends Error {
  override readonly name = 'InvalidCsvError';
  /** The client's (sanitized) name for the file, when it gave one: set by whoever knows it. */
  fileName?: string;
  constructor(
    readonly faults: CsvFault[],
    readonly faultCount: number,
    readonly rows: number,
    /** 413 when the file is well-formed so far but larger than allowed. */
    readonly status: 413 | 422 = 422,
  ) {
    super(`invalid CSV: ${faultCount} fault(s), first at line ${faults[0]?.line}: ${faults[0]?.reason}`);
  }
}

const PARSE_ERRORS: Record<CsvSyntaxCode, string> = {
  'unclosed-quote': 'a quoted field is never closed',
  'invalid-closing-quote': 'a closing quote must be followed by a comma or the end of the line',
  'record-too-long': 'a record is longer than the limit (a quote left open, or a runaway field)',
  'invalid-opening-quote': 'a quote inside an unquoted field (quote the whole field and double the quote)',
};

const YEAR = COLUMNS.findIndex((c) => c.name === 'year');
const MONTH = COLUMNS.findIndex((c) => c.name === 'month');
const DAY = COLUMNS.findIndex((c) => c.name === 'day');
const OUTPUT_CHUNK = 64 * 1024;
const CANONICAL_HEADER_LINE = CANONICAL_HEADER.join(',') + '\n';

/**
 * Headers seen before, with their map and their row checker: most files of a
 * process share a header, so it is mapped once, and the checker keeps the
 * verdicts it has learned on code columns from file to file. A PlainRows is
 * shared safely: its per-row state lives only from a check to the write that
 * follows it in the same call. Bounded, as a client chooses the headers.
 */
const knownHeaders = new Map<string, { map: HeaderMap; plainRows: PlainRows }>();
const KNOWN_HEADERS_KEPT = 64;

function knownHeader(record: string[], maxFieldChars: number): { map: HeaderMap; plainRows: PlainRows } | { faults: CsvFault[] } {
  const key = `${maxFieldChars}\u0000${record.join('\u0000')}`;
  const known = knownHeaders.get(key);
  if (known) return known;
  const mapped = mapHeader(record);
  if (!mapped.ok) return { faults: mapped.faults };
  if (knownHeaders.size >= KNOWN_HEADERS_KEPT) knownHeaders.clear();
  const header = { map: mapped.map, plainRows: new PlainRows(mapped.map, maxFieldChars) };
  knownHeaders.set(key, header);
  return header;
}

/**
 * The checks and the canonical output, fed the file's bytes in any chunks.
 * Both the stream (CsvValidator) and a small body read whole (checkWhole) run
 * on it, so there is one validator whichever way the bytes come.
 */
export class CsvCheck {
  rows = 0;
  private readonly faults: CsvFault[] = [];
  private faultCount = 0;
  private header?: HeaderMap;
  /** Checks and writes the common row on its bytes, once the header is known. */
  private plainRows?: PlainRows;
  private readonly output: ByteOutput;
  /** The canonical row being built, reused from row to row. */
  private readonly out: string[] = new Array<string>(COLUMNS.length + 1).fill('');
  private readonly parser: CsvRecords;
  private fatal?: InvalidCsvError;

  /** `emit` is handed the canonical CSV in chunks of about `outputChunkBytes`. */
  constructor(
    private readonly limits: ValidationLimits,
    emit: (chunk: Buffer) => void,
    outputChunkBytes = OUTPUT_CHUNK,
  ) {
    this.output = new ByteOutput(outputChunkBytes, emit);
    this.parser = new CsvRecords(limits.maxRecordChars, {
      record: (record, line) => {
        if (!this.fatal) this.onRecord(record, line);
      },
      plainLine: (bytes, start, end, line) => this.fatal !== undefined || this.onPlainLine(bytes, start, end, line),
    });
  }

  /** Reads the next bytes; the fault that ends the file early (a syntax error, too many rows), once there is one. */
  write(chunk: Buffer): InvalidCsvError | undefined {
    if (!this.fatal) this.feed((p) => p.write(chunk));
    return this.fatal;
  }

  /** The end of the file: why it is invalid, or undefined once the rest of its canonical CSV is emitted. */
  end(): InvalidCsvError | undefined {
    if (!this.fatal) this.feed((p) => p.end());
    if (this.fatal) return this.fatal;
    if (!this.header) this.fault({ line: 1, reason: 'the file is empty: a header line is required' });
    else if (this.rows === 0 && this.faultCount === 0) this.fault({ line: this.parser.nextLine, reason: 'the file has a header but no rows' });
    if (this.faultCount > 0) return new InvalidCsvError(this.faults, this.faultCount, this.rows);
    this.output.flush();
    return undefined;
  }

  /** Runs the reader, turning a syntax error into the file's fatal fault. */
  private feed(step: (parser: CsvRecords) => void): void {
    try {
      step(this.parser);
    } catch (e) {
      if (!(e instanceof CsvSyntaxError)) throw e;
      this.fatal ??= new InvalidCsvError([{ line: e.line, column: e.column, reason: PARSE_ERRORS[e.code] }], this.faultCount + 1, this.rows);
    }
  }

  /**
   * The common row, a plain line whose cells are all valid and canonical, is
   * checked on its bytes and written out as it came (its fields in schema
   * order); any other row, or any doubt, is declined, decoded and goes
   * through onRecord, which gives the same output or the fault.
   */
  private onPlainLine(bytes: Buffer, start: number, end: number, line: number): boolean {
    if (!this.plainRows || this.rows >= this.limits.maxRows || !this.plainRows.check(bytes, start, end)) return false;
    this.rows += 1;
    // As in onRecord: once the file is invalid, valid rows are only counted.
    if (this.faultCount === 0) this.plainRows.write(this.output, bytes, start, end, line);
    return true;
  }

  private onRecord(record: string[], line: number): void {
    if (record.length === 1 && record[0] === '') return; // a blank line
    if (!this.header) return this.onHeader(record);
    this.rows += 1;
    if (this.rows > this.limits.maxRows) {
      this.fatal = new InvalidCsvError([{ line, reason: `more than ${this.limits.maxRows} rows` }], this.faultCount + 1, this.rows, 413);
      return;
    }
    const { positions, width } = this.header;
    if (record.length !== width) {
      this.fault({ line, column: Math.min(record.length, width) + 1, reason: `expected ${width} fields, found ${record.length}` });
      return;
    }
    const out = this.out;
    let valid = true;
    for (let i = 0; i < COLUMNS.length; i++) {
      const position = positions[i]!;
      const column = COLUMNS[i]!;
      if (position < 0) {
        out[i] = '';
        continue;
      }
      const raw = record[position]!;
      const cell = raw.length > this.limits.maxFieldChars ? { reason: `longer than the limit of ${this.limits.maxFieldChars} characters` } : canonicalCell(column, raw);
      if (typeof cell === 'string') out[i] = cell;
      else {
        valid = false;
        this.fault({ line, column: position + 1, field: column.name, value: raw.slice(0, 200), reason: cell.reason });
      }
    }
    if (valid && !isValidDate(Number(out[YEAR]), Number(out[MONTH]), Number(out[DAY]))) {
      valid = false;
      this.fault({ line, column: positions[DAY]! + 1, field: 'day', value: record[positions[DAY]!], reason: `${out[YEAR]}-${out[MONTH]}-${out[DAY]} is not a date` });
    }
    if (!valid || this.faultCount > 0) return; // once invalid, nothing more is written
    out[COLUMNS.length] = String(line);
    this.output.text(out.join(',') + '\n');
  }

  private onHeader(record: string[]): void {
    if (record.length > this.limits.maxColumns) {
      this.fatal = new InvalidCsvError([{ line: 1, reason: `more than ${this.limits.maxColumns} columns` }], 1, 0);
      return;
    }
    const header = knownHeader(record, this.limits.maxFieldChars);
    if ('faults' in header) {
      this.fatal = new InvalidCsvError(header.faults.slice(0, this.limits.maxFaults), header.faults.length, 0);
      return;
    }
    this.header = header.map;
    this.plainRows = header.plainRows;
    this.output.text(CANONICAL_HEADER_LINE);
  }

  private fault(fault: CsvFault): void {
    this.faultCount += 1;
    if (this.faults.length < this.limits.maxFaults) this.faults.push(fault);
    this.output.discard();
  }
}

/** CsvCheck as a stream: the file's bytes in, its canonical CSV out, `rows` once it has ended. */
export class CsvValidator extends Transform {
  private readonly check: CsvCheck;

  constructor(limits: ValidationLimits = DEFAULT_LIMITS, outputChunkBytes = OUTPUT_CHUNK) {
    super({ readableHighWaterMark: outputChunkBytes });
    this.check = new CsvCheck(limits, (chunk) => this.push(chunk), outputChunkBytes);
  }

  get rows(): number {
    return this.check.rows;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(this.check.write(chunk));
  }

  override _flush(done: TransformCallback): void {
    done(this.check.end());
  }
}

/** A file already whole in memory, checked in one call: its canonical CSV and rows, or the InvalidCsvError thrown. */
export function checkWhole(bytes: Buffer, limits: ValidationLimits): { canonical: Buffer[]; rows: number } {
  const canonical: Buffer[] = [];
  const check = new CsvCheck(limits, (chunk) => canonical.push(chunk));
  const invalid = check.write(bytes) ?? check.end();
  if (invalid) throw invalid;
  return { canonical, rows: check.rows };
}
