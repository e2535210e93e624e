/**
 * V4 signing through the official client, offline: a service-account key made
 * here signs locally, and the test checks the URL the way GCS would: rebuild
 * the canonical request from the URL and the signed headers, then verify the
 * signature over its string-to-sign with the key's public half.
 */
import { createHash, createVerify, generateKeyPairSync } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { GcsObjectStore } from '../../functions/adapters/gcs/store.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const CLIENT_EMAIL = 'flights-api@demo-project.iam.gserviceaccount.com';
const storage = new Storage({ projectId: 'demo-project', credentials: { client_email: CLIENT_EMAIL, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } });
const store = new GcsObjectStore('flights-bkt', storage);

/** The canonical request GCS rebuilds from what the client sends (https://cloud.google.com/storage/docs/authentication/canonical-requests). */
function stringToSign(method: string, url: URL, headers: Record<string, string>): string {
  const params = url.search.slice(1).split('&').filter((p) => !p.startsWith('X-Goog-Signature=')).sort();
  const signed = url.searchParams.get('X-Goog-SignedHeaders')!.split(';');
  const all: Record<string, string> = { host: url.host, ...headers };
  const canonicalHeaders = signed.map((h) => `${h}:${all[h]?.trim()}\n`).join('');
  const request = [method, url.pathname, params.join('&'), canonicalHeaders, signed.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const date = url.searchParams.get('X-Goog-Date')!;
  const scope = url.searchParams.get('X-Goog-Credential')!.split('/').slice(1).join('/');
  return ['GOOG4-RSA-SHA256', date, scope, createHash('sha256').update(request).digest('hex')].join('\n');
}

const verifies = (text: string, signatureHex: string): boolean => createVerify('RSA-SHA256').update(text).verify(publicKey, Buffer.from(signatureHex, 'hex'));

describe('GcsObjectStore.signedUrl (V4, through @google-cloud/storage)', () => {
  it('signs a download: algorithm, credential scope, expiry, host only, and a signature the public key verifies', async () => {
    const expiresAt = new Date(Date.now() + 15 * 60_000);
    const signed = await store.signedUrl('exports/abc/000000000000.csv.gz', { action: 'read', expiresAt });
    const url = new URL(signed.url);
    expect(signed).toMatchObject({ method: 'GET', headers: {}, expiresAt: expiresAt.toISOString() });
    expect(url.origin + url.pathname).toBe('https://storage.googleapis.com/flights-bkt/exports/abc/000000000000.csv.gz');
    expect(url.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
    expect(url.searchParams.get('X-Goog-Credential')).toMatch(new RegExp(`^${CLIENT_EMAIL}/\\d{8}/auto/storage/goog4_request$`));
    expect(Number(url.searchParams.get('X-Goog-Expires'))).toBeGreaterThanOrEqual(899);
    expect(Number(url.searchParams.get('X-Goog-Expires'))).toBeLessThanOrEqual(900);
    expect(url.searchParams.get('X-Goog-SignedHeaders')).toBe('host');

    const signature = url.searchParams.get('X-Goog-Signature')!;
    expect(verifies(stringToSign('GET', url, {}), signature)).toBe(true);
    // The same signature does not cover another object, or another method.
    const other = new URL(url.href.replace('000000000000.csv.gz', '000000000001.csv.gz'));
    expect(verifies(stringToSign('GET', other, {}), signature)).toBe(false);
    expect(verifies(stringToSign('PUT', url, {}), signature)).toBe(false);
  });

  it('signs a resumable upload start with the content type, exact size and if-generation-match bound', async () => {
    const expiresAt = new Date(Date.now() + 60 * 60_000);
    const signed = await store.signedUrl('landing/u1.csv', { action: 'resumable', expiresAt, contentType: 'text/csv', contentLength: 209_715_200, ifGenerationMatch: '0' });
    expect(signed.method).toBe('POST');
    expect(signed.headers).toEqual({ 'x-goog-resumable': 'start', 'content-type': 'text/csv', 'x-upload-content-length': '209715200', 'x-goog-if-generation-match': '0' });
    const url = new URL(signed.url);
    expect(url.searchParams.get('X-Goog-SignedHeaders')).toBe('content-type;host;x-goog-if-generation-match;x-goog-resumable;x-upload-content-length');

    const signature = url.searchParams.get('X-Goog-Signature')!;
    expect(verifies(stringToSign('POST', url, signed.headers), signature)).toBe(true);
    // What GCS would see from a client that changed what it sends: the signature no longer matches.
    expect(verifies(stringToSign('POST', url, { ...signed.headers, 'content-type': 'application/octet-stream' }), signature)).toBe(false);
    expect(verifies(stringToSign('POST', url, { ...signed.headers, 'x-upload-content-length': '1' }), signature)).toBe(false);
  });
});
