/**
 * Who uploaded, as the platform in front of the function vouches for it:
 * API Gateway (JWT auth) forwards the verified token's payload, base64url
 * encoded, in X-Apigateway-Api-Userinfo; IAP sets X-Goog-Authenticated-User-Email
 * (`accounts.google.com:user@example.com`). Both are only trustworthy when the
 * function cannot be reached around them (IAM-private functions).
 */
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
 * The caller an Idempotency-Key belongs to: two callers' keys never meet. The
 * one place to change when the request carries a stronger identity (an API key).
 */
export const callerIdentity = (headers: IncomingHttpHeaders): string => uploaderIdentity(headers) ?? 'anonymous';
