/**
 * Who uploaded, as the platform in front of the function vouches for it:
 * API Gateway (JWT auth) forwards the verified token's payload, base64url
 * encoded, in X-Apigateway-Api-Userinfo; IAP sets X-Goog-Authenticated-User-Email
 * (`accounts.google.com:user@example.com`). Both are only trustworthy when the
 * function cannot be reached around them (IAM-private functions).
 */
import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const MAX_LENGTH = 200;
// eslint-disable-next-line no-control-regex
const clean = (s: string): string | undefined => s.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, MAX_LENGTH) || undefined;
const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

function fromGatewayUserInfo(encoded: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Record<string, unknown>;
    const who = claims.email ?? claims.sub;
    return typeof who === 'string' ? clean(who) : undefined;
  } catch {
    return undefined;
  }
}

export function uploaderIdentity(headers: IncomingHttpHeaders): string | undefined {
  const userInfo = header(headers, 'x-apigateway-api-userinfo');
  const fromGateway = userInfo ? fromGatewayUserInfo(userInfo) : undefined;
  if (fromGateway) return fromGateway;
  const iap = header(headers, 'x-goog-authenticated-user-email');
  return iap ? clean(iap.replace(/^accounts\.google\.com:/, '')) : undefined;
}

/**
 * An API key the gateway checked but did not name (ESPv2 forwards every header and the query
 * string; it names only JWT callers): a digest, so the key itself is never stored.
 */
function apiKeyDigest(headers: IncomingHttpHeaders, url: string | undefined): string | undefined {
  const key = header(headers, 'x-api-key') ?? (url === undefined ? undefined : new URL(url, 'http://caller').searchParams.get('key') ?? undefined);
  return key ? `api-key-sha256:${hash('sha256', key, 'hex').slice(0, 32)}` : undefined;
}

/**
 * The caller an Idempotency-Key belongs to: two callers' keys never meet. A named identity
 * first; in the cloud an API-key caller is known only by its key.
 */
export const callerIdentity = (req: { headers: IncomingHttpHeaders; url?: string }): string =>
  uploaderIdentity(req.headers) ?? apiKeyDigest(req.headers, req.url) ?? 'anonymous';
