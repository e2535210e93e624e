/**
 * The CPU one small `POST /upload` costs the process on its way through the local gateway, one
 * request at a time: `npx tsx bench/request-cpu.ts [checkout …]` (default: this one). For each
 * checkout, in turn and `REQUEST_CPU_RUNS` times over (each round in the opposite order to the last),
 * it builds the gateway as `npm start` does (operators' routes, request metrics, storage routes,
 * access control with AUTH=off, the spec's routes) around that checkout's own handlers, on a store
 * under `BENCH_DIR` (default: the OS temp dir), without the bus subscriptions, so no loader runs,
 * and sends it `REQUEST_CPU_REQUESTS` distinct 100-row files over one keep-alive connection after
 * as many unmeasured ones. Per request, process CPU (`process.cpuUsage`: this process's client
 * included, the same on every side) for two handlers behind the same gateway:
 * - `upload`: the real ingest handler (validation, staging, the store's writes);
 * - `echo`: a function that reads the body and answers 201 with `sendJson`: the gateway and HTTP
 *   alone, for a cut of their cost that the store's noise would hide;
 * and beside them a bare `node:http` server that does what `echo` does: the floor of this loop.
 * Each measurement runs in a process of its own (as `npm start` runs node), so that no checkout's
 * module state (an `AsyncLocalStorage` turns on promise hooks for the whole process) reaches another's.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http, { type RequestListener } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { flightsCsv } from '../test/support/generate-flights.js';
import { envInt, median, NPM_START_ARGS } from './support.js';

const trees = (process.argv.length > 2 ? process.argv.slice(2) : ['.']).map((t) => path.resolve(t));
const requests = envInt('REQUEST_CPU_REQUESTS', 2000);
const runs = envInt('REQUEST_CPU_RUNS', 3);
const nextFiles = (): Buffer[] => Array.from({ length: 2 * requests }, (_, i) => Buffer.from(flightsCsv(100, i + 1)));

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** A checkout's gateway, built as functions/local/pipeline.ts builds it, bar the subscriptions. */
async function gatewayOf(tree: string, dataDir: string, upload: 'real' | 'echo'): Promise<{ listen: Listen; close(): Promise<void> }> {
  const load = (file: string): Promise<Record<string, never>> => import(pathToFileURL(path.join(tree, 'functions', file)).href);
  const [{ loadConfig }, { createRuntime }, { createLogger }, gateway, { ingestHandler }, { storageRoutes }, { gatewayAccess }, { operatorRoutes }, { MetricsHistory }, { sendJson }, { listenWithTimeouts }] =
    await Promise.all(
      ['core/config.ts', 'runtime.ts', 'core/logger.ts', 'local/gateway.ts', 'ingest/handler.ts', 'local/storage-routes.ts', 'ops/gateway-access.ts', 'ops/routes.ts', 'ops/history.ts', 'core/http.ts', 'local/listen.ts'].map(load),
    ) as any[];
  const config = loadConfig({ ...process.env, DATA_DIR: dataDir, AUTH: 'off', LOG_LEVEL: 'warn' });
  const rt = await createRuntime(config, createLogger('warn'));
  const echo: Handler = (req, res) => {
    req.resume();
    req.on('end', () => sendJson(res, 201, { ok: true }, { Location: '/uploads/x' }));
  };
  const noop: Handler = (_req, res) => void res.end();
  const functions = { upload: upload === 'real' ? ingestHandler(rt) : echo, uploads: noop, getdata: noop, exports: noop };
  const app = gateway.createGateway(functions, undefined, rt.localBucket && storageRoutes(rt.localBucket, rt.log), {
    corsOrigins: rt.config.corsOrigins,
    access: await gatewayAccess(rt.config.auth, rt.log),
    operations: operatorRoutes(rt, new MetricsHistory(rt.config, rt.bus, 60_000)),
  });
  return { listen: () => listenWithTimeouts(app, 0, '127.0.0.1', 60_000), close: () => rt.close() };
}

/** The checkout's server, listening on a loopback port. */
type Listen = () => Promise<http.Server>;

const bareListener: RequestListener = (req, res) => {
  req.resume();
  req.on('end', () => {
    const json = JSON.stringify({ ok: true });
    res.writeHead(201, { Location: '/uploads/x', 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(json)) });
    res.end(json);
  });
};
const bare: Listen = () => {
  const server = http.createServer(bareListener);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
};

function post(port: number, agent: http.Agent, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent, headers: { 'content-type': 'text/csv', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU µs per request of the server `listen` starts, after as many unmeasured requests. */
async function measure(listen: Listen): Promise<number> {
  const files = nextFiles();
  const server = await listen();
  const { port } = server.address() as { port: number };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const send = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const status = await post(port, agent, files[i]!);
        if (status !== 201) throw new Error(`request ${i} answered ${status}`);
      }
    };
    await send(0, requests);
    const t0 = process.cpuUsage();
    await send(requests, 2 * requests);
    const { user, system } = process.cpuUsage(t0);
    return (user + system) / requests;
  } finally {
    agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

type Case = 'upload' | 'echo' | 'bare';
const one = process.env.REQUEST_CPU_ONE;

if (one) {
  const [c, tree] = one.split('\t') as [Case, string];
  const dataDir = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-request-cpu-'));
  try {
    if (c === 'bare') console.log(await measure(bare));
    else {
      const gateway = await gatewayOf(tree, dataDir, c === 'upload' ? 'real' : 'echo');
      try {
        console.log(await measure(gateway.listen));
      } finally {
        await gateway.close();
      }
    }
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  process.exit(0);
}

const results = new Map<string, number[]>();
function record(c: Case, tree: string): void {
  const key = `${c}\t${tree}`;
  // npm start's V8 flags and loader, without its entry point: the flags up to `--import tsx`. The figure is the last line (a logger may write before it).
  const args = [...NPM_START_ARGS.slice(0, NPM_START_ARGS.indexOf('tsx') + 1), new URL(import.meta.url).pathname];
  const us = Number(execFileSync(process.execPath, args, { env: { ...process.env, REQUEST_CPU_ONE: key }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());
  results.set(key, [...(results.get(key) ?? []), us]);
  console.error(`${c} ${tree}: ${us.toFixed(0)} µs per request, load ${os.loadavg()[0]!.toFixed(1)}`);
}

for (let run = 0; run < runs; run++) {
  record('bare', '-');
  for (const tree of run % 2 ? [...trees].reverse() : trees) for (const c of ['echo', 'upload'] as const) record(c, tree);
}

console.log(`Process CPU per request, µs (median of ${runs} runs of ${requests} sequential 100-row uploads, client included; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})

| case | checkout | µs per request (runs) | median |
|---|---|--:|--:|
${[...results].map(([key, us]) => `| ${key.replace('\t', ' | ')} | ${us.map((u) => u.toFixed(0)).join(', ')} | ${median(us).toFixed(0)} |`).join('\n')}
`);
