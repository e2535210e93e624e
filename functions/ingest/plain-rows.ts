/**
 * The common row, checked and written on its bytes. A plain line (no quote,
 * no CR) whose every cell is valid and already in the form canonicalCell
 * gives is written out as it came, its fields in schema order, without a
 * string made for it. Anything else (a fault, a NULL token to blank, a value
 * to rewrite, a byte outside printable ASCII) is "not known to be canonical"
 * here and goes to canonicalCell, which decides: this never finds a row
 * invalid, so faults are reported by one path only.
 *
 * What is canonical mirrors cells.ts (plain digits with no leading zero, at
 * most 15 of them; an optional minus on numbers, but not `-0`; an exact
 * `YYYY-MM-DD HH:MM:SS`; a string that is not a NULL token), on bytes instead
 * of characters; test/unit/plain-rows.test.ts holds the two to the same answers.
 */
import { COLUMNS, NULL_TOKENS, type Column } from '../core/schema.js';
import { isValidDate, stringFault } from './cells.js';
import type { ByteOutput } from './byte-output.js';
import type { HeaderMap } from './header.js';

const COMMA = 44;
const MINUS = 45;
const ZERO = 48;
const [DASH, SPACE, COLON] = ['-', ' ', ':'].map((c) => c.charCodeAt(0));
const TIMESTAMP_BYTES = 19;
/** Longest plain integer: 15 digits are exact in a double, so the text is what String(Number(text)) prints. */
const MAX_DIGITS = 15;

const [INTEGER, NUMBER, TIMESTAMP, STRING] = [0, 1, 2, 3];
const KINDS: Record<Column['type'], number> = { integer: INTEGER, number: NUMBER, timestamp: TIMESTAMP, string: STRING };

/**
 * Strings up to this many bytes are packed into a number (7 bits a byte, so
 * under 2^28), and each column keeps its verdict per value: a code column's
 * pattern is tested once per distinct code, not once per row.
 */
const PACKED_BYTES = 4;
const VERDICTS_KEPT = 4096;
const NULL_TOKEN_BYTES = Math.max(...[...NULL_TOKENS].map((token) => token.length));

const YEAR = COLUMNS.findIndex((c) => c.name === 'year');
const MONTH = COLUMNS.findIndex((c) => c.name === 'month');
const DAY = COLUMNS.findIndex((c) => c.name === 'day');

/** Two ASCII digits at `at`, or NaN. */
function twoDigits(b: Buffer, at: number): number {
  const tens = b[at]! - ZERO;
  const ones = b[at + 1]! - ZERO;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : NaN;
}

/** Whether the 19 bytes at `at` are a real `YYYY-MM-DD HH:MM:SS`. */
function isExactTimestamp(b: Buffer, at: number): boolean {
  if (b[at + 4] !== DASH || b[at + 7] !== DASH || b[at + 10] !== SPACE || b[at + 13] !== COLON || b[at + 16] !== COLON) return false;
  const year = twoDigits(b, at) * 100 + twoDigits(b, at + 2);
  const month = twoDigits(b, at + 5);
  const day = twoDigits(b, at + 8);
  // NaN fails every comparison, and isValidDate refuses it.
  return isValidDate(year, month, day) && twoDigits(b, at + 11) <= 23 && twoDigits(b, at + 14) <= 59 && twoDigits(b, at + 17) <= 59;
}

/** A string cell kept as it came: not a NULL token (written as ''), and no fault. */
const isCanonicalString = (column: Column, text: string): boolean => !NULL_TOKENS.has(text) && !stringFault(column, text);

export class PlainRows {
  /** Per position in the file: its column, as a kind and bounds read without a lookup. */
  private readonly columns: Column[];
  private readonly kinds: number[];
  private readonly mins: number[];
  private readonly maxs: number[];
  private readonly verdicts: Map<number, boolean>[];
  private readonly yearAt: number;
  private readonly monthAt: number;
  private readonly dayAt: number;
  /** Where each field of the row last checked starts and ends, to put them in schema order. */
  private readonly starts: number[];
  private readonly ends: number[];
  private readonly inSchemaOrder: boolean;

  constructor(
    private readonly header: HeaderMap,
    private readonly maxFieldChars: number,
  ) {
    this.columns = Array.from({ length: header.width }, (_, position) => COLUMNS[header.positions.indexOf(position)]!);
    this.kinds = this.columns.map((c) => KINDS[c.type]);
    this.mins = this.columns.map((c) => c.min ?? -Infinity);
    this.maxs = this.columns.map((c) => c.max ?? Infinity);
    this.verdicts = this.columns.map(() => new Map());
    this.yearAt = header.positions[YEAR]!;
    this.monthAt = header.positions[MONTH]!;
    this.dayAt = header.positions[DAY]!;
    this.starts = new Array<number>(header.width).fill(0);
    this.ends = new Array<number>(header.width).fill(0);
    this.inSchemaOrder = header.width === COLUMNS.length && header.positions.every((position, i) => position === i);
  }

  /**
   * Whether `b[start, end)`, a line with no quote and no CR whose line end is
   * at `end`, is a row of valid cells in canonical form. Each field is found
   * and checked in one pass; a field's scan stops at the first byte that
   * cannot be in it, which must then be the comma or the line end.
   */
  check(b: Buffer, start: number, end: number): boolean {
    const last = this.columns.length - 1;
    let p = start;
    let year = 0;
    let month = 0;
    let day = 0;
    for (let j = 0; j <= last; j++) {
      const kind = this.kinds[j]!;
      let q = p;
      let value = 0;
      if (kind === INTEGER || kind === NUMBER) {
        const negative = kind === NUMBER && b[q] === MINUS;
        if (negative) q++;
        const first = q;
        for (let d = b[q]! - ZERO; d >= 0 && d <= 9; d = b[++q]! - ZERO) value = value * 10 + d;
        const digits = q - first;
        if (digits === 0) {
          if (negative || !this.columns[j]!.nullable) return false;
        } else {
          if (digits > MAX_DIGITS || (digits > 1 && b[first] === ZERO) || (negative && value === 0)) return false;
          if (negative) value = -value;
          if (value < this.mins[j]! || value > this.maxs[j]!) return false;
        }
      } else if (kind === TIMESTAMP) {
        q += TIMESTAMP_BYTES;
        if (q > end || !isExactTimestamp(b, p)) return false;
      } else {
        for (let c = b[q]!; c !== COMMA && c >= 0x20 && c <= 0x7e; c = b[++q]!);
        if (!this.isCanonicalString(j, b, p, q)) return false;
      }
      // The scan must have stopped at this field's end: a comma, or the line end after the last field.
      if (j === last ? q !== end : b[q] !== COMMA || q === end) return false;
      if (q - p > this.maxFieldChars) return false;
      this.starts[j] = p;
      this.ends[j] = q;
      if (j === this.yearAt) year = value;
      else if (j === this.monthAt) month = value;
      else if (j === this.dayAt) day = value;
      p = q + 1;
    }
    return isValidDate(year, month, day);
  }

  /** Writes the row `check` accepted last, in schema order, with its line. */
  write(out: ByteOutput, b: Buffer, start: number, end: number, line: number): void {
    if (this.inSchemaOrder) {
      out.reserve(end - start);
      out.copy(b, start, end);
      out.lineEnd(line);
      return;
    }
    out.reserve(end - start + COLUMNS.length);
    this.header.positions.forEach((position, i) => {
      if (i > 0) out.comma();
      if (position >= 0) out.copy(b, this.starts[position]!, this.ends[position]!);
    });
    out.lineEnd(line);
  }

  /** `b[p, q)`, printable ASCII, for the string column at position j. */
  private isCanonicalString(j: number, b: Buffer, p: number, q: number): boolean {
    const column = this.columns[j]!;
    const length = q - p;
    if (length === 0) return column.nullable;
    if (length <= PACKED_BYTES) {
      let key = 0;
      for (let i = p; i < q; i++) key = key * 128 + b[i]!;
      const verdicts = this.verdicts[j]!;
      let verdict = verdicts.get(key);
      if (verdict === undefined) {
        verdict = isCanonicalString(column, b.toString('latin1', p, q));
        if (verdicts.size < VERDICTS_KEPT) verdicts.set(key, verdict);
      }
      return verdict;
    }
    if (column.pattern || length <= NULL_TOKEN_BYTES) return isCanonicalString(column, b.toString('latin1', p, q));
    return column.maxLength === undefined || length <= column.maxLength;
  }
}
