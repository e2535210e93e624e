/**
 * The entry point Cloud Functions gen2 runs (and the functions-framework CLI
 * locally): one registration per function, all sharing one lazily built
 * runtime per instance.
 */
import * as ff from '@google-cloud/functions-framework';
import type { Request, Response } from 'express';
import { withCors } from './core/cors.js';
import { deadLetterHandler, flushHandler, loaderHandler } from './loader/handler.js';
import { exportsHandler } from './exports/handler.js';
import { exportRunner } from './exports/runner.js';
import { ingestHandler } from './ingest/handler.js';
import { queryHandler } from './query/handler.js';
import { uploadsHandler } from './uploads/handler.js';
import { landingValidator } from './uploads/validate.js';
import { createRuntime, type Runtime } from './runtime.js';

let runtime: Promise<Runtime> | undefined;
const getRuntime = (): Promise<Runtime> => (runtime ??= createRuntime());

/** Builds the handler on first use, so cold starts pay only for the function that runs. */
function lazy<A extends unknown[]>(make: (rt: Runtime) => (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  let handler: ((...args: A) => Promise<void>) | undefined;
  return async (...args: A) => {
    handler ??= make(await getRuntime());
    return handler(...args);
  };
}

/** An HTTP function, behind CORS when CORS_ORIGINS lists origins (API Gateway passes preflights through: docs/design.md). */
const http = (make: (rt: Runtime) => (req: Request, res: Response) => Promise<void>) => lazy((rt) => withCors(rt.config.corsOrigins, make(rt)));

ff.http('upload', http(ingestHandler));
ff.http('uploads', http(uploadsHandler));
ff.cloudEvent('validateUpload', lazy(landingValidator));
ff.cloudEvent('loadFlights', lazy(loaderHandler));
ff.cloudEvent('flushLoads', lazy(flushHandler));
ff.cloudEvent('deadLetter', lazy(deadLetterHandler));
ff.http('getdata', http(queryHandler));
ff.http('exports', http(exportsHandler));
ff.cloudEvent('runExport', lazy(exportRunner));
