/**
 * Typed values from text. Every value a client sends (filters, from/to) and
 * every value a cursor carries is checked here against its column's type, so
 * the warehouse never sees a value it would fail to cast.
 */
import { closestMatch } from 'leven';
import type { ParamType, Scalar } from '../core/query-spec.js';
import { Problem } from '../core/problem.js';

export const EXPECTED: Record<ParamType, string> = {
  integer: 'an integer',
  number: 'a decimal number',
  string: 'text',
  timestamp: 'a timestamp YYYY-MM-DD HH:MM:SS',
  date: 'a date YYYY-MM-DD',
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER = /^-?\d{1,19}$/;
const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?$/;

function isCalendarDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** Integers beyond 2^53 (object generations) stay decimal strings so no digit is lost. */
function integer(text: string): Scalar | undefined {
  if (!INTEGER.test(text)) return undefined;
  const big = BigInt(text);
  if (big < INT64_MIN || big > INT64_MAX) return undefined;
  return Number.isSafeInteger(Number(text)) ? Number(text) : big.toString();
}

function timestamp(text: string): string | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m || !isCalendarDate(m[1] ?? '')) return undefined;
  if (Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4]) > 59) return undefined;
  return `${m[1]} ${m[2]}:${m[3]}:${m[4]}${m[5] ?? ''}`;
}

/** The value `text` denotes as a `type`, or undefined when it is not one. */
export function parseValue(text: string, type: ParamType): Scalar | undefined {
  switch (type) {
    case 'integer':
      return integer(text);
    case 'number':
      return NUMBER.test(text) && Number.isFinite(Number(text)) ? Number(text) : undefined;
    case 'string':
      return text;
    case 'timestamp':
      return timestamp(text);
    case 'date':
      return isCalendarDate(text) ? text : undefined;
  }
}

/** Whether a value read back from JSON (a cursor) is one of `type`. */
export function isValueOf(value: unknown, type: ParamType): value is Scalar | null {
  if (value === null) return true;
  if (type === 'number') return typeof value === 'number' && Number.isFinite(value);
  if (type === 'integer') return (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && integer(value) !== undefined);
  return typeof value === 'string' && parseValue(value, type) !== undefined;
}

/** A 400 naming the parameter at fault and, when there is a closed set, what it may be. */
export function invalidParameter(parameter: string, detail: string, allowed?: readonly string[]): Problem {
  return new Problem(400, 'invalid-parameter', 'Invalid query parameter', detail, allowed ? { parameter, allowed: [...allowed] } : { parameter });
}

/** A 400 for a value that is not of its column's type, naming the type expected (`expected`, `type`). */
export function invalidValue(parameter: string, text: string, type: ParamType): Problem {
  return new Problem(400, 'invalid-parameter', 'Invalid query parameter', `${parameter}: ${JSON.stringify(text)} is not ${EXPECTED[type]}.`, {
    parameter,
    type,
    expected: EXPECTED[type],
  });
}

/** The candidate a mistyped name was most likely meant to be (a third of its letters or fewer wrong), if any. */
export const closestName = (name: string, candidates: readonly string[]): string | undefined =>
  closestMatch(name.toLowerCase(), candidates, { maxDistance: Math.max(1, Math.floor(name.length / 3)) });

/** " Did you mean `carrier`?" when `name` is a near miss of one of `candidates`; else nothing. */
export const didYouMean = (name: string, candidates: readonly string[]): string => {
  const guess = closestName(name, candidates);
  return guess ? ` Did you mean \`${guess}\`?` : '';
};
