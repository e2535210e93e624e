/**
 * The operators' routes the local gateway serves beside the API: `/metrics`
 * (Prometheus text) and the SLO dashboard, whose charting library (uPlot) is
 * served from its npm package: nothing comes from a CDN.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import type { Runtime } from '../runtime.js';
import { refreshBacklog } from './backlog.js';
import { dashboardModel } from './dashboard-model.js';
import type { MetricsHistory } from './history.js';
import { registry } from './metrics.js';

const require = createRequire(import.meta.url);
const asset = (name: string): string => fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url));

export function operatorRoutes(rt: Runtime, history: MetricsHistory): Router {
  const router = express.Router();
  router.get('/metrics', async (_req, res, next) => {
    try {
      await refreshBacklog(rt.config, rt.bus);
      res.type(registry.contentType).send(await registry.metrics());
    } catch (e) {
      next(e);
    }
  });
  router.get('/dashboard', (_req, res) => res.sendFile(asset('index.html')));
  router.get('/dashboard/app.js', (_req, res) => res.type('text/javascript').sendFile(asset('app.js')));
  router.get('/dashboard/uplot.js', (_req, res) => res.type('text/javascript').sendFile(require.resolve('uplot/dist/uPlot.iife.min.js')));
  router.get('/dashboard/uplot.css', (_req, res) => res.type('text/css').sendFile(require.resolve('uplot/dist/uPlot.min.css')));
  router.get('/dashboard/data.json', async (_req, res, next) => {
    try {
      const now = Date.now();
      // A fresh sample first, so the figures are those of this moment, not of the last tick.
      res.json(dashboardModel(await history.sample(now), now));
    } catch (e) {
      next(e);
    }
  });
  return router;
}
