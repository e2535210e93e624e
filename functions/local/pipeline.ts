/**
 * Everything `npm start` runs in one process: the gateway in front of the
 * HTTP functions, and the bus subscriptions that deliver notifications to the
 * loader as the CloudEvents Cloud Functions would deliver them.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toCloudEvent } from '../core/notification.js';
import type { MessageHandler, Subscription, SubscriptionSpec } from '../core/ports.js';
import { ingestHandler } from '../ingest/handler.js';
import { deadLetterHandler, loaderHandler } from '../loader/handler.js';
import { exportsHandler } from '../exports/handler.js';
import { exportRunner } from '../exports/runner.js';
import { queryHandler } from '../query/handler.js';
import { subscriptionFor } from '../core/topology.js';
import type { Runtime } from '../runtime.js';
import { uploadsHandler } from '../uploads/handler.js';
import { landingValidator } from '../uploads/validate.js';
import { createGateway } from './gateway.js';
import { listenWithTimeouts } from './listen.js';
import { recoverAtStartUp } from './recovery.js';
import { storageRoutes } from './storage-routes.js';
import { gatewayAccess } from '../ops/gateway-access.js';
import { operatorRoutes } from '../ops/routes.js';
import { MetricsHistory } from '../ops/history.js';

export const LOCAL_PROJECT = 'local';

export interface LocalPipeline {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Adapts a CloudEvent function to a bus subscriber, as Eventarc does for a Pub/Sub trigger. */
function deliverAsCloudEvent(spec: SubscriptionSpec, handler: (event: ReturnType<typeof toCloudEvent>) => Promise<void>): MessageHandler {
  return (message) => handler(toCloudEvent(message, LOCAL_PROJECT, spec.topic, spec.name));
}

/** `specText`: another API document than openapi/openapi.yaml (tests declare extra security schemes). */
export async function startLocalPipeline(rt: Runtime, port = rt.config.port, host = rt.config.host, specText?: string): Promise<LocalPipeline> {
  await recoverAtStartUp(rt);
  const subscriptions: Subscription[] = [];
  for (const [spec, handler] of [
    [subscriptionFor(rt.config, 'loadFlights'), loaderHandler(rt)],
    [subscriptionFor(rt.config, 'deadLetter'), deadLetterHandler(rt)],
    [subscriptionFor(rt.config, 'runExport'), exportRunner(rt)],
    [subscriptionFor(rt.config, 'validateUpload'), landingValidator(rt)],
  ] as const) {
    subscriptions.push(await rt.bus.subscribe(spec, deliverAsCloudEvent(spec, handler as never)));
  }
  // What Cloud Scheduler does in the cloud: retry pending files (those that failed, or waited for the spacing).
  const tick = setInterval(() => void rt.flush().catch((e: unknown) => rt.log.error({ err: e }, 'flush failed')), rt.config.flushTickMs);
  const functions = { upload: ingestHandler(rt), uploads: uploadsHandler(rt), getdata: queryHandler(rt), exports: exportsHandler(rt) };
  const history = new MetricsHistory(rt.config, rt.bus, rt.config.metricsSampleMs);
  await history.start();
  const app = createGateway(functions, specText, rt.localBucket && storageRoutes(rt.localBucket, rt.log), {
    corsOrigins: rt.config.corsOrigins,
    access: await gatewayAccess(rt.config.auth, rt.log),
    operations: operatorRoutes(rt, history),
  });
  const server = await listenWithTimeouts(app, port, host, rt.config.headersTimeoutMs).catch(async (e: unknown) => {
    await history.stop();
    throw e;
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;
  rt.localBucket?.signer.bind(rt.config.publicUrl ?? url);
  return {
    server,
    url,
    async close() {
      clearInterval(tick);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(subscriptions.map((s) => s.close()));
      await history.stop();
    },
  };
}
