/**
 * HMAC-signed URLs for the local bucket, the stand-in for GCS V4 signing.
 * The signature covers the method, the object, the expiry and the values of
 * the headers named in the URL, which the server reads from the request
 * itself (as GCS does): a request with another content type or size, another
 * method, or an edited query fails verification, like a tampered URL.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SignedRequest } from '../../core/ports.js';

export const SIGNED_PATH = '/storage/signed/';

export type Verdict = { ok: true } | { ok: false; reason: 'malformed' | 'expired' | 'signature' };

export interface SignInput {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  expiresAt: Date;
}

const encodeName = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

export class LocalUrlSigner {
  private baseUrl?: string;

  constructor(private readonly secret: string) {
    if (!secret) throw new Error('the URL signing secret is empty');
  }

  /** Where the gateway serving SIGNED_PATH listens; known only once it does. */
  bind(baseUrl: string): void {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  sign(bucket: string, name: string, input: SignInput): SignedRequest {
    if (!this.baseUrl) throw new Error('signed URLs need the public URL of the local gateway (LocalUrlSigner.bind)');
    const expires = Math.floor(input.expiresAt.getTime() / 1000);
    const names = Object.keys(input.headers).map((h) => h.toLowerCase()).sort();
    const signature = this.mac(input.method, bucket, name, expires, names.map((h) => [h, input.headers[h] ?? '']));
    const query = new URLSearchParams({ expires: String(expires), headers: names.join(';'), signature });
    return {
      method: input.method,
      url: `${this.baseUrl}${SIGNED_PATH}${encodeURIComponent(bucket)}/${encodeName(name)}?${query}`,
      headers: input.headers,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  }

  /** Checks a request against its URL; `header` reads the request's own headers. */
  verify(bucket: string, name: string, method: string, query: URLSearchParams, header: (name: string) => string | undefined, now = Date.now()): Verdict {
    const expires = Number(query.get('expires'));
    const given = Buffer.from(query.get('signature') ?? '', 'hex');
    const names = (query.get('headers') ?? '').split(';').filter(Boolean);
    if (!Number.isInteger(expires) || given.length === 0) return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.mac(method, bucket, name, expires, names.map((h) => [h, header(h)?.trim() ?? ''])), 'hex');
    // Constant-time, so the comparison leaks nothing about how much of a forged signature was right.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature' };
    // Checked after the signature, so an edited expiry reads as tampering, not as expired.
    if (expires * 1000 <= now) return { ok: false, reason: 'expired' };
    return { ok: true };
  }

  private mac(method: string, bucket: string, name: string, expires: number, headers: [string, string][]): string {
    const canonical = JSON.stringify([method.toUpperCase(), bucket, name, expires, headers]);
    return createHmac('sha256', this.secret).update(canonical).digest('hex');
  }
}
