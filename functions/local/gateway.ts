/**
 * The local stand-in for API Gateway: an Express app whose routes come from
 * openapi/openapi.yaml, each operation dispatched to the function its
 * x-google-backend names. No body parsing happens here, so handlers get the
 * live request stream.
 */
import express, { type Express, type Request, type Response } from 'express';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { methodNotAllowed, notFound, sendProblem } from '../core/http.js';
import { AccessControl, type AccessOptions } from '../ops/access.js';
import { observeRequests } from '../ops/request-metrics.js';
import { operationAccess, securitySchemes, type OperationAccess, type OperationAccessView, type SpecAccessView } from '../ops/security.js';
import { corsFor } from '../core/cors.js';
import { apiDocs } from './browser.js';

export type HttpHandler = (req: Request, res: Response) => Promise<void> | void;

interface Operation extends OperationAccessView {
  operationId?: string;
  'x-google-backend'?: { address?: string };
}

export const SPEC_PATH = fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url));
const BACKEND = /^\$\{functions\.(\w+)\}$/;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export interface Route {
  method: (typeof METHODS)[number];
  path: string;
  target: string;
  /** Who may call it and what a call costs, as the spec declares. */
  access: OperationAccess;
}

/** Every operation of the spec with the function that serves it. */
export function routesFromSpec(specText: string): Route[] {
  const spec = parse(specText) as SpecAccessView & { paths?: Record<string, Record<string, Operation>> };
  const routes: Route[] = [];
  for (const [specPath, item] of Object.entries(spec.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const address = operation['x-google-backend']?.address ?? '';
      const target = BACKEND.exec(address)?.[1];
      if (!target) throw new Error(`${method.toUpperCase()} ${specPath}: x-google-backend.address must be \${functions.<name>}, got ${JSON.stringify(address)}`);
      routes.push({ method, path: specPath, target, access: operationAccess(spec, operation, `${method.toUpperCase()} ${specPath}`) });
    }
  }
  return routes;
}

const expressPath = (specPath: string): string => specPath.replace(/\{(\w+)\}/g, ':$1');

export interface BrowserOptions {
  /** Origins allowed to call the API from a browser (CORS); none by default. */
  corsOrigins?: readonly string[];
}

export interface GatewayOptions extends BrowserOptions {
  /** Enforce the spec's security and quotas with these keys; without it every operation is open. */
  access?: Omit<AccessOptions, 'schemes'>;
  /** Operators' routes beside the API (metrics, dashboard): not in the spec, not behind its keys. */
  operations?: express.Router;
}

/**
 * `bucket` serves the local bucket's signed URLs (storage-routes.ts): not part
 * of the API, so not in the spec, and guarded by their own signatures.
 */
export function createGateway(
  functions: Record<string, HttpHandler>,
  specText = fs.readFileSync(SPEC_PATH, 'utf8'),
  bucket?: express.Router,
  options: GatewayOptions = {},
): Express {
  const app = express();
  app.disable('x-powered-by');
  const allowOrigins = corsFor(options.corsOrigins ?? []);
  const observed: express.RequestHandler[] = [observeRequests, ...(allowOrigins ? [allowOrigins] : [])];
  const routes = routesFromSpec(specText);
  const access = options.access && new AccessControl({ ...options.access, schemes: securitySchemes(parse(specText) as SpecAccessView) });
  // The API's operations come first: Express tries the layers in order, and enters each router it
  // passes (the operators', the bucket's, the docs') to try that router's own.
  for (const route of routes) {
    const handler = functions[route.target];
    if (!handler) throw new Error(`${route.method.toUpperCase()} ${route.path}: no function named ${route.target}`);
    const labelled: express.RequestHandler = (_req, res, next) => {
      res.locals.route = route.path;
      next();
    };
    app[route.method](expressPath(route.path), ...observed, labelled, ...(access ? [access.guard(route.access)] : []), handler);
  }
  // Operators' routes before the request metrics of the rest, so the dashboard polling itself never counts as API traffic.
  if (options.operations) app.use(options.operations);
  app.use(observed);
  for (const specPath of new Set(routes.map((r) => r.path))) {
    const allowed = routes.filter((r) => r.path === specPath).map((r) => r.method.toUpperCase());
    app.all(expressPath(specPath), (req, res) => {
      res.setHeader('Allow', allowed.join(', '));
      sendProblem(res, methodNotAllowed(req, allowed));
    });
  }
  if (bucket) app.use(bucket);
  app.get('/openapi.yaml', (_req, res) => void res.type('application/yaml').send(specText));
  app.use(apiDocs(specText));
  app.use((req, res) => sendProblem(res, notFound(`No route for ${req.method} ${req.path}; see /openapi.yaml.`)));
  return app;
}

export const specFile = (): string => path.relative(process.cwd(), SPEC_PATH);
