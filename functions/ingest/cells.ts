/**
 * One cell of an uploaded CSV, checked against its column and written in the
 * canonical form the loaders read: integers without `.0`, numbers as
 * JavaScript prints them, timestamps as `YYYY-MM-DD HH:MM:SS`, NULL as empty.
 */
import { NULL_TOKENS, type Column } from '../core/schema.js';

/** A canonical cell, or the reason the raw cell is not valid. */
export type CellResult = { ok: true; value: string } | { ok: false; reason: string };

const INTEGER = /^[+-]?\d+(\.0*)?$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?Z?$/;
const NEEDS_QUOTES = /[",\r\n]/;

const ok = (value: string): CellResult => ({ ok: true, value });
const fail = (reason: string): CellResult => ({ ok: false, reason });

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Arithmetic rather than a Date per call: it runs twice for every row. */
export function isValidDate(year: number, month: number, day: number): boolean {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day) || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

function inRange(column: Column, n: number): CellResult | undefined {
  if (column.min !== undefined && n < column.min) return fail(`${n} is below the minimum ${column.min}`);
  if (column.max !== undefined && n > column.max) return fail(`${n} is above the maximum ${column.max}`);
  return undefined;
}

function integerCell(column: Column, text: string): CellResult {
  if (!INTEGER.test(text)) return fail('expected an integer');
  const n = Number(text);
  if (!Number.isSafeInteger(n)) return fail('integer out of range');
  return inRange(column, n) ?? ok(String(n));
}

function numberCell(column: Column, text: string): CellResult {
  if (!NUMBER.test(text)) return fail('expected a number');
  const n = Number(text);
  if (!Number.isFinite(n)) return fail('number out of range');
  return inRange(column, n) ?? ok(String(n));
}

function timestampCell(text: string): CellResult {
  const m = TIMESTAMP.exec(text);
  if (!m) return fail('expected a timestamp like 2013-01-01 05:00:00');
  const [, y, mo, d, h, mi, s = '00', frac = ''] = m;
  if (!isValidDate(Number(y), Number(mo), Number(d)) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    return fail('not a real date and time');
  }
  return ok(`${y}-${mo}-${d} ${h}:${mi}:${s}${frac}`);
}

function stringCell(column: Column, text: string): CellResult {
  if (text.includes('\uFFFD')) return fail('not valid UTF-8');
  if (text.includes('\0')) return fail('contains a NUL byte');
  if (column.maxLength !== undefined && text.length > column.maxLength) return fail(`longer than ${column.maxLength} characters`);
  if (column.pattern && !column.pattern.test(text)) return fail(`does not match ${column.pattern.source}`);
  return ok(NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
}

export function canonicalCell(column: Column, raw: string): CellResult {
  const text = column.type === 'string' ? raw : raw.trim();
  if (NULL_TOKENS.has(text)) return column.nullable ? ok('') : fail('a value is required');
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
