/**
 * The local gateway's access control: it enforces what openapi/openapi.yaml
 * declares, as API Gateway does. A call without any credential the operation
 * accepts is answered 401; an API key nobody issued 403; a JWT that does not
 * verify (signature, issuer, audience, expiry) 401; a caller over its quota
 * 429 with Retry-After. The caller then reaches the function the way API
 * Gateway passes it on: X-Apigateway-Api-Userinfo, the base64url JSON of the
 * JWT payload (here also `{"sub":"key:<name>"}` for a key), after dropping
 * any copy the client sent, together with X-Goog-Authenticated-User-Email.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { discardUnreadBody, queryParams, sendProblem } from '../core/http.js';
import type { Logger } from '../core/logger.js';
import { Problem } from '../core/problem.js';
import type { ApiKeys } from './api-keys.js';
import { QuotaCounter } from './rate-limit.js';
import type { OperationAccess, SecurityScheme } from './security.js';

/** Identity headers only the gateway may set. */
export const IDENTITY_HEADERS = ['x-apigateway-api-userinfo', 'x-goog-authenticated-user-email'] as const;

export interface Caller {
  /** Who, for quotas and provenance: the JWT's email or subject, else `key:<name>`. */
  id: string;
  claims: Record<string, unknown>;
}

type Refusal = { ok: false; presented: boolean; problem: Problem };
type Check = { ok: true; caller: Caller } | Refusal;

const missing = (): Problem =>
  new Problem(401, 'unauthenticated', 'Unauthorized', 'This operation needs an API key: send it in the x-api-key header or the key query parameter.');
const unknownKey = (): Problem => new Problem(403, 'forbidden', 'Forbidden', 'The API key is not valid for this API.');
const badToken = (why: string): Problem => new Problem(401, 'invalid-token', 'Unauthorized', `The bearer token was refused: ${why}.`);

const bearer = (req: Request): string | undefined => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? queryParams(req).get('access_token') ?? undefined;

export interface AccessOptions {
  schemes: Record<string, SecurityScheme>;
  keys: ApiKeys;
  /** `off`: everyone gets in, nothing is counted (AUTH=off, for local play). */
  enabled: boolean;
  log: Logger;
  now?: () => number;
}

export class AccessControl {
  private readonly quotas: QuotaCounter;
  private readonly jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(private readonly options: AccessOptions) {
    this.quotas = new QuotaCounter(options.now);
  }

  private async checkScheme(scheme: SecurityScheme, req: Request): Promise<Check> {
    if (scheme.kind === 'apiKey') {
      const value = scheme.in === 'header' ? req.headers[scheme.name] : queryParams(req).get(scheme.name);
      const key = Array.isArray(value) ? value[0] : value;
      if (!key) return { ok: false, presented: false, problem: missing() };
      const name = this.options.keys.nameOf(key);
      if (name === undefined) return { ok: false, presented: true, problem: unknownKey() };
      return { ok: true, caller: { id: `key:${name}`, claims: { sub: `key:${name}` } } };
    }
    const token = bearer(req);
    if (!token) return { ok: false, presented: false, problem: missing() };
    let jwks = this.jwks.get(scheme.jwksUri);
    if (!jwks) this.jwks.set(scheme.jwksUri, (jwks = createRemoteJWKSet(new URL(scheme.jwksUri))));
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: scheme.issuer,
        ...(scheme.audiences.length ? { audience: scheme.audiences } : {}),
        ...(this.options.now ? { currentDate: new Date(this.options.now()) } : {}),
      });
      return { ok: true, caller: { id: callerOf(payload), claims: payload as Record<string, unknown> } };
    } catch (e) {
      return { ok: false, presented: true, problem: badToken((e as Error).message) };
    }
  }

  /** The first alternative whose schemes all pass; else the most telling refusal (a presented credential over a missing one). */
  async authenticate(access: OperationAccess, req: Request): Promise<Check> {
    let refusal: Refusal | undefined;
    for (const alternative of access.alternatives) {
      let caller: Caller | undefined;
      let failed: Refusal | undefined;
      for (const name of alternative) {
        const check = await this.checkScheme(this.options.schemes[name]!, req);
        if (!check.ok) {
          failed = check;
          break;
        }
        // With a JWT and a key together, the JWT names the person; the key only the client.
        if (!caller || this.options.schemes[name]!.kind === 'jwt') caller = check.caller;
      }
      if (!failed) return { ok: true, caller: caller! };
      if (!refusal || (failed.presented && !refusal.presented)) refusal = failed;
    }
    return refusal ?? { ok: false, presented: false, problem: missing() };
  }

  /** Express middleware for one operation. */
  guard(access: OperationAccess): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      for (const name of IDENTITY_HEADERS) delete req.headers[name];
      if (!this.options.enabled || access.alternatives.length === 0) return next();
      this.authenticate(access, req).then((check) => {
        if (!check.ok) {
          sendProblem(res, check.problem);
          return discardUnreadBody(req);
        }
        const verdict = this.quotas.spend(check.caller.id, access.quotas);
        if (!verdict.allowed) {
          res.setHeader('Retry-After', String(verdict.retryAfterSeconds));
          const { limit, perWindow, windowSeconds } = verdict.limit!;
          sendProblem(res, new Problem(429, 'quota-exceeded', 'Too Many Requests', `Quota ${limit} (${perWindow} calls per ${windowSeconds} s) is used up; retry after ${verdict.retryAfterSeconds} s.`));
          return discardUnreadBody(req);
        }
        req.headers['x-apigateway-api-userinfo'] = Buffer.from(JSON.stringify(check.caller.claims)).toString('base64url');
        res.locals.caller = check.caller.id;
        next();
      }, next);
    };
  }
}

function callerOf(payload: JWTPayload): string {
  const email = (payload as { email?: unknown }).email;
  return typeof email === 'string' ? email : (payload.sub ?? payload.iss ?? 'unknown');
}
