/** The operators' routes the local gateway serves beside the API: `/metrics` (Prometheus text) and the dashboard. */
import express, { type Router } from 'express';
import type { Runtime } from '../runtime.js';
import { refreshBacklog } from './backlog.js';
import { registry } from './metrics.js';

export function operatorRoutes(rt: Runtime): Router {
  const router = express.Router();
  router.get('/metrics', async (_req, res, next) => {
    try {
      await refreshBacklog(rt.config, rt.bus);
      res.type(registry.contentType).send(await registry.metrics());
    } catch (e) {
      next(e);
    }
  });
  return router;
}
