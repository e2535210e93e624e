/**
 * What a browser needs from the local gateway: the API reference at /docs
 * (Swagger UI from the swagger-ui-dist package, served from here, no CDN).
 * CORS is core/cors.ts, shared with the cloud functions.
 */
import express from 'express';
import swaggerUi from 'swagger-ui-express';
import { parse } from 'yaml';

/**
 * The spec as the docs page uses it for "try it out": without `schemes`
 * (https only, as API Gateway serves it), calls go to the page's own origin.
 */
function docsSpec(specText: string): swaggerUi.JsonObject {
  const { schemes: _schemes, host: _host, ...spec } = parse(specText) as swaggerUi.JsonObject;
  return spec;
}

export function apiDocs(specText: string): express.Router {
  const spec = docsSpec(specText);
  const router = express.Router();
  router.use('/docs', swaggerUi.serveFiles(spec), swaggerUi.setup(spec, { customSiteTitle: 'Flights API' }));
  return router;
}
