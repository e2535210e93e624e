/**
 * Opaque, tamper-evident keyset cursors: base64url(JSON payload) "." base64url(HMAC-SHA256).
 * The payload names the sort and the filters it was made for (as digests) and
 * the sort key of the last row served. A cursor is only accepted back with the
 * same sort and filters; otherwise its position would mean nothing.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Filter, OrderKey, QuerySpec, Scalar } from '../core/query-spec.js';
import { QUERYABLE_COLUMNS } from '../core/schema.js';
import { invalidParameter, isValueOf } from './values.js';

interface Payload {
  v: 1;
  /** Digest of the sort. */
  o: string;
  /** Digest of the filters, in a canonical order so parameter order does not matter. */
  f: string;
  /** The last row's values of the sort columns. */
  a: (Scalar | null)[];
}

const digest = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 22);

const orderDigest = (order: OrderKey[]): string => digest(order.map((k) => [k.column, k.direction, k.nulls]));
const filterDigest = (filters: Filter[]): string => digest(filters.map((f) => JSON.stringify(f)).sort());

function mac(body: string, secret: string): Buffer {
  if (!secret) throw new Error('cursor secret is empty');
  return createHmac('sha256', secret).update(body).digest();
}

/** The cursor for the page after `lastRow`, a row of the result of `spec` (which has the sort columns). */
export function nextCursor(spec: QuerySpec, lastRow: Record<string, unknown>, secret: string): string {
  if (spec.aggregate) throw new Error('aggregate results have no cursor');
  const after = spec.order.map((k) => (lastRow[k.column] ?? null) as Scalar | null);
  const payload: Payload = { v: 1, o: orderDigest(spec.order), f: filterDigest(spec.filters), a: after };
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${mac(body, secret).toString('base64url')}`;
}

/** A cursor for the next page only when this page was full: a short page is the last. */
export function pageCursor(spec: QuerySpec, rows: Record<string, unknown>[], secret: string): string | undefined {
  const last = rows.at(-1);
  return !spec.aggregate && last && rows.length >= spec.limit ? nextCursor(spec, last, secret) : undefined;
}

const malformed = (why: string) => invalidParameter('cursor', `The cursor is not valid: ${why}. Use the cursor from the previous page's next link unchanged.`);

/** The keyset position `token` carries, after checking its MAC and that it was made for this sort and these filters. */
export function decodeCursor(token: string, spec: Pick<QuerySpec, 'order' | 'filters'>, secret: string): (Scalar | null)[] {
  const [body, tag, ...rest] = token.split('.');
  if (!body || !tag || rest.length) throw malformed('it is not a cursor');
  const expected = mac(body, secret);
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw malformed('its signature does not match');
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
  if (payload.v !== 1 || !Array.isArray(payload.a)) throw malformed('unknown version');
  if (payload.o !== orderDigest(spec.order)) {
    throw invalidParameter('cursor', 'The cursor was made for a different order; send the same order parameter as on the first page.');
  }
  if (payload.f !== filterDigest(spec.filters)) {
    throw invalidParameter('cursor', 'The cursor was made for different filters; send the same filters as on the first page.');
  }
  const fits = payload.a.length === spec.order.length && spec.order.every((k, i) => isValueOf(payload.a[i], QUERYABLE_COLUMNS.get(k.column) ?? 'string'));
  if (!fits) throw malformed('its position does not fit the order');
  return payload.a;
}
