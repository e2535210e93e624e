/**
 * `npm run start:emulators`: the functions as Cloud Functions runs them, each
 * under the real functions-framework in a process of its own, wired the way
 * the cloud wires them, on this machine:
 * - Pub/Sub is the real emulator (started here unless PUBSUB_EMULATOR_HOST
 *   names a running one); each event function is triggered as in the cloud,
 *   by a push subscription from core/topology.ts (tools/emulator-triggers.ts),
 *   filters included, but the emulator does not apply filters, so here the
 *   loader and the validator each get (and skip) the other's notifications;
 * - Cloud Storage is the filesystem bucket in DATA_DIR (no GCS emulator runs
 *   offline here), publishing its notifications to the emulator;
 * - BigQuery is DuckDB in DATA_DIR, opened per operation because several
 *   processes share it (SHARED_DATA_DIR, see functions/adapters/duckdb/shared.ts);
 * - this process stands in for API Gateway (routes from openapi/openapi.yaml,
 *   proxied to the HTTP functions), for storage.googleapis.com (the bucket's
 *   signed URLs and resumable sessions, on the gateway's port) and Cloud
 *   Scheduler (publishes a flush tick every FLUSH_TICK_MS, and the reconcile
 *   tick at start and every RECONCILE_TICK_MS);
 * - it runs npm start's start-up recovery (functions/local/recovery.ts) before
 *   anything is served, and restarts a function process that dies, on the same
 *   port, as Cloud Run replaces an instance.
 *
 * Ports: the gateway on PORT (8080), the emulator on PUBSUB_EMULATOR_PORT
 * (8085), the functions from FUNCTIONS_PORT (8090) upwards, or on free ports
 * with FUNCTIONS_PORT=0; all on HOST (127.0.0.1). SIGINT or SIGTERM stops
 * everything it started.
 */
import type { AddressInfo } from 'node:net';
import { int, loadConfig } from '../functions/core/config.js';
import { createLogger } from '../functions/core/logger.js';
import { createGateway, specFile } from '../functions/local/gateway.js';
import { listenWithTimeouts } from '../functions/local/listen.js';
import { proxyTo } from '../functions/local/proxy.js';
import { recoverAtStartUp } from '../functions/local/recovery.js';
import { storageRoutes } from '../functions/local/storage-routes.js';
import { gatewayAccess } from '../functions/ops/gateway-access.js';
import { PubSubBus } from '../functions/adapters/pubsub/bus.js';
import { FUNCTIONS, topology, type FunctionName } from '../functions/core/topology.js';
import { createBus, createRuntime } from '../functions/runtime.js';
import { createTriggers, runSchedules } from './emulator-triggers.js';
import { startFunction, type FunctionProcess } from './functions-framework.js';
import { freePort } from './ports.js';
import { startPubSubEmulator } from './pubsub-emulator.js';

const PROJECT = 'demo';
/** Nine processes compiling the sources at once took over 60 s on a busy 2-core machine. */
const FUNCTION_START_TIMEOUT_MS = 180_000;

const log = createLogger();
const cleanups: (() => Promise<void>)[] = [];
let stopping = false;

/** Undoes what started, newest first, and exits. */
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => log.error({ err }, 'stopping failed'));
  process.exit(code);
}

async function functionPorts(): Promise<number[]> {
  const first = int(process.env, 'FUNCTIONS_PORT', 8090);
  const ports: number[] = [];
  for (const [i] of FUNCTIONS.entries()) ports.push(first ? first + i : await freePort());
  return ports;
}

/** The running instance of each function; a replacement takes its predecessor's place. */
const instances = new Map<FunctionName, FunctionProcess>();

/**
 * Starts `target` on `port`, and again on the same port whenever it dies, as Cloud Run replaces a
 * dead instance: the push subscriptions keep their endpoint, and what the dead one never
 * acknowledged is redelivered to its successor. One that cannot start again stops the whole set.
 */
async function runFunction(target: FunctionName, port: number, env: NodeJS.ProcessEnv, host: string): Promise<FunctionProcess> {
  // FUNCTION_TARGET, as Cloud Functions sets it, tells each process which function it serves.
  const fn = await startFunction(target, port, { ...env, FUNCTION_TARGET: target }, { host, startTimeoutMs: FUNCTION_START_TIMEOUT_MS });
  instances.set(target, fn);
  void fn.exited.then(async (code) => {
    if (stopping) return;
    log.warn({ function: target, code }, 'function process exited; restarting it');
    const startedAt = performance.now();
    await runFunction(target, port, env, host).then(
      () => log.info({ function: target, restartMs: Math.round(performance.now() - startedAt) }, 'function process restarted'),
      (err: unknown) => {
        log.error({ function: target, err }, 'function process could not be restarted; stopping');
        void shutdown(1);
      },
    );
  });
  return fn;
}

async function startFunctions(env: NodeJS.ProcessEnv, host: string): Promise<Record<FunctionName, FunctionProcess>> {
  const ports = await functionPorts();
  cleanups.push(async () => void (await Promise.all([...instances.values()].map((fn) => fn.stop()))));
  const started = await Promise.allSettled(FUNCTIONS.map((target, i) => runFunction(target, ports[i]!, env, host)));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const processes = started.map((r) => (r as PromiseFulfilledResult<FunctionProcess>).value);
  return Object.fromEntries(processes.map((fn) => [fn.target, fn])) as Record<FunctionName, FunctionProcess>;
}

async function main(): Promise<void> {
  const existingEmulator = process.env.PUBSUB_EMULATOR_HOST;
  const emulator = existingEmulator ? undefined : await startPubSubEmulator({ projectId: PROJECT, port: int(process.env, 'PUBSUB_EMULATOR_PORT', 8085) });
  if (emulator) cleanups.push(emulator.stop);
  const emulatorHost = existingEmulator ?? emulator!.host;

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STORE: 'local',
    BUS: 'pubsub',
    WAREHOUSE: 'duckdb',
    PUBSUB_EMULATOR_HOST: emulatorHost,
    GOOGLE_CLOUD_PROJECT: PROJECT,
    SHARED_DATA_DIR: '1',
  };
  const requested = loadConfig(env);
  // Absolute, so every process means the same directory; the gateway's address known up front, so the functions sign URLs for it.
  env.DATA_DIR = requested.dataDir;
  env.PORT = String(requested.port || (await freePort()));
  env.PUBLIC_URL ||= `http://${requested.host}:${env.PORT}`;
  const config = loadConfig(env);

  // The bucket's own endpoint: its sessions finalize objects here, so this runtime publishes their notifications.
  const rt = await createRuntime(config, log);
  cleanups.push(() => rt.close());
  // Before anything is served, what a killed run left is put right, as npm start does: dead claims,
  // staging/ and temp leftovers, sessions that had every byte, incoming/ objects never loaded (loaded here).
  await recoverAtStartUp(rt);

  const functions = await startFunctions(env, config.host);

  const bus = await createBus(config, log);
  cleanups.push(() => bus.close());
  if (!(bus instanceof PubSubBus)) throw new Error('start:emulators needs BUS=pubsub');
  const wiring = topology(config);
  await createTriggers(bus, wiring, PROJECT, (target) => functions[target].url);

  const schedule = new AbortController();
  const ticks = runSchedules(bus, wiring.schedules, schedule.signal, (err) => log.warn({ err }, 'scheduled tick not published'));
  cleanups.push(async () => {
    schedule.abort();
    await ticks;
  });

  const http = { upload: proxyTo(functions.upload.url), uploads: proxyTo(functions.uploads.url), getdata: proxyTo(functions.getdata.url), exports: proxyTo(functions.exports.url) };
  const gateway = createGateway(http, undefined, rt.localBucket && storageRoutes(rt.localBucket, log), { access: await gatewayAccess(config.auth, log) });
  const server = await listenWithTimeouts(gateway, config.port, config.host, config.headersTimeoutMs);
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address}:${port}`;
  const triggers = new Map<string, string>(wiring.subscriptions.map((s) => [s.target, `← push subscription ${s.name} on ${s.topic}`]));
  const row = (name: string, where: string, what: string) => `  ${name.padEnd(15)}${where.padEnd(25)}${what}`;
  console.log(
    [
      `Flights pipeline on the emulators (data in ${config.dataDir})`,
      '',
      row('gateway', url, `API Gateway stand-in, routes from ${specFile()}`),
      ...FUNCTIONS.map((name) => row(name, functions[name].url, `functions-framework ${triggers.get(name) ?? '← gateway'}`)),
      ...wiring.schedules.map((s) => row('Scheduler', `every ${s.localEveryMs} ms`, `${s.name}: publishes to ${s.topic} (Cloud Scheduler stand-in)`)),
      row('Pub/Sub', emulatorHost, `${emulator ? 'emulator started here' : 'existing emulator'}, project ${PROJECT}`),
      row('Cloud Storage', 'filesystem', `${config.dataDir}/buckets (no GCS emulator runs offline)`),
      row('BigQuery', 'DuckDB', `${config.dataDir}/warehouse.duckdb`),
      '',
      `  curl -F file=@samples/flights-sample.csv ${url}/upload`,
      `  curl ${url}/uploads/<uploadId>`,
      `  curl '${url}/getdata'`,
      '',
      'Ctrl-C stops everything.',
    ].join('\n'),
  );
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));
try {
  await main();
} catch (err) {
  log.error({ err }, 'could not start');
  await shutdown(1);
}
