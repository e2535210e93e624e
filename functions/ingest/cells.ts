/**
 * One cell of an uploaded CSV, checked against its column and written in the
 * canonical form the loaders read: integers without `.0`, numbers as
 * JavaScript prints them, timestamps as `YYYY-MM-DD HH:MM:SS`, NULL as empty.
 */
import { NULL_TOKENS, type Column } from '../core/schema.js';

/** Why a raw cell is not valid. */
export interface CellFault {
  readonly reason: string;
}

/** A canonical cell, or its fault: a bare string on the success path, so a valid cell allocates nothing. */
export type CellResult = string | CellFault;

const INTEGER = /^[+-]?\d+(\.0*)?$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?Z?$/;
const NEEDS_QUOTES = /[",\r\n]/;
/** Longer text cannot be a NULL token, so most cells skip the set lookup, which hashes the string. */
const NULL_TOKEN_MAX = Math.max(...[...NULL_TOKENS].map((token) => token.length));

const fail = (reason: string): CellFault => ({ reason });

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Arithmetic rather than a Date per call: it runs twice for every row. */
export function isValidDate(year: number, month: number, day: number): boolean {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day) || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

function inRange(column: Column, n: number): CellFault | undefined {
  if (column.min !== undefined && n < column.min) return fail(`${n} is below the minimum ${column.min}`);
  if (column.max !== undefined && n > column.max) return fail(`${n} is above the maximum ${column.max}`);
  return undefined;
}

/**
 * The value of `text` from `from` on when it is 1 to 15 plain digits without a
 * leading zero, else -1. Such text is already what String(Number(text)) gives
 * (15 digits are exact in a double), so the common cell needs no regex and no copy.
 */
function plainDigits(text: string, from: number, to = text.length): number {
  const length = to - from;
  if (length < 1 || length > 15 || (length > 1 && text.charCodeAt(from) === 48)) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function integerCell(column: Column, text: string): CellResult {
  const plain = plainDigits(text, 0);
  if (plain >= 0) return inRange(column, plain) ?? text;
  if (!INTEGER.test(text)) return fail('expected an integer');
  const n = Number(text);
  if (!Number.isSafeInteger(n)) return fail('integer out of range');
  return inRange(column, n) ?? String(n);
}

/** The value of text[from, to) when it is plainDigits with an optional minus (but not "-0", which prints as "0"), else NaN. */
function plainNumber(text: string, from: number, to: number): number {
  const negative = text.charCodeAt(from) === 45; // '-'
  const plain = plainDigits(text, negative ? from + 1 : from, to);
  return plain > 0 || (plain === 0 && !negative) ? (negative ? -plain : plain) : NaN;
}

function numberCell(column: Column, text: string): CellResult {
  const plain = plainNumber(text, 0, text.length);
  if (!Number.isNaN(plain)) return inRange(column, plain) ?? text;
  if (!NUMBER.test(text)) return fail('expected a number');
  const n = Number(text);
  if (!Number.isFinite(n)) return fail('number out of range');
  return inRange(column, n) ?? String(n);
}

const [DASH, SPACE, COLON] = ['-', ' ', ':'].map((c) => c.charCodeAt(0));

/** Two digits at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - 48;
  const ones = text.charCodeAt(at + 1) - 48;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : NaN;
}

/**
 * `YYYY-MM-DD HH:MM:SS` exactly at `at` (the 19 characters from there), the form
 * every export writes: whether it is a real date and time, or undefined when
 * the text has another form.
 */
function exactTimestamp(text: string, at: number): boolean | undefined {
  if (text.charCodeAt(at + 4) !== DASH || text.charCodeAt(at + 7) !== DASH || text.charCodeAt(at + 10) !== SPACE) return undefined;
  if (text.charCodeAt(at + 13) !== COLON || text.charCodeAt(at + 16) !== COLON) return undefined;
  const year = twoDigits(text, at) * 100 + twoDigits(text, at + 2);
  const month = twoDigits(text, at + 5);
  const day = twoDigits(text, at + 8);
  const hour = twoDigits(text, at + 11);
  const minute = twoDigits(text, at + 14);
  const second = twoDigits(text, at + 17);
  if (Number.isNaN(year + month + day + hour + minute + second)) return undefined; // NaN spreads through the sum
  return isValidDate(year, month, day) && hour <= 23 && minute <= 59 && second <= 59;
}

function timestampCell(text: string): CellResult {
  const exact = text.length === 19 ? exactTimestamp(text, 0) : undefined;
  if (exact !== undefined) return exact ? text : fail('not a real date and time');
  const m = TIMESTAMP.exec(text);
  if (!m) return fail('expected a timestamp like 2013-01-01 05:00:00');
  const [, y, mo, d, h, mi, s = '00', frac = ''] = m;
  if (!isValidDate(Number(y), Number(mo), Number(d)) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    return fail('not a real date and time');
  }
  return `${y}-${mo}-${d} ${h}:${mi}:${s}${frac}`;
}

export function stringFault(column: Column, text: string): CellFault | undefined {
  if (text.includes('\uFFFD')) return fail('not valid UTF-8');
  if (text.includes('\0')) return fail('contains a NUL byte');
  if (column.maxLength !== undefined && text.length > column.maxLength) return fail(`longer than ${column.maxLength} characters`);
  if (column.pattern && !column.pattern.test(text)) return fail(`does not match ${column.pattern.source}`);
  return undefined;
}

function stringCell(column: Column, text: string): CellResult {
  return stringFault(column, text) ?? (NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
}

export function canonicalCell(column: Column, raw: string): CellResult {
  const text = column.type === 'string' ? raw : raw.trim();
  if (text.length <= NULL_TOKEN_MAX && NULL_TOKENS.has(text)) return column.nullable ? '' : fail('a value is required');
  switch (column.type) {
    case 'integer':
      return integerCell(column, text);
    case 'number':
      return numberCell(column, text);
    case 'timestamp':
      return timestampCell(text);
    case 'string':
      return stringCell(column, text);
  }
}
