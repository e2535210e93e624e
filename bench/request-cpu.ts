/**
 * The CPU one small `POST /upload` costs the server on its way through the local gateway, one
 * request at a time: `npx tsx bench/request-cpu.ts [checkout …]` (default: this one). For each
 * checkout, in turn and `REQUEST_CPU_RUNS` times over (each round in the opposite order to the last),
 * a server process of its own (node with `npm start`'s flags) builds the gateway as `npm start` does
 * (operators' routes, request metrics, storage routes, access control with AUTH=off, the spec's
 * routes, the same HTTP server) around that checkout's own handlers, on a store under `BENCH_DIR`
 * (default: the OS temp dir), without the bus subscriptions, so no loader runs. This process sends it
 * `REQUEST_CPU_REQUESTS` distinct 100-row files over one keep-alive connection after as many
 * unmeasured ones; the server counts its own CPU (`process.cpuUsage`, all its threads) over the
 * measured ones. Two handlers behind the same gateway:
 * - `upload`: the real ingest handler (validation, staging, the store's writes);
 * - `echo`: a function that reads the body and answers 201 with `sendJson`: the gateway and HTTP
 *   alone, for a cut of their cost that the store's noise would hide;
 * and beside them a bare `node:http` server that does what `echo` does: the floor.
 * The client stays out of the server's process: in one process, its own HTTP objects would share
 * Node's code paths with the server's and change what V8 makes of them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http, { type RequestListener } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
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

type Case = 'upload' | 'echo' | 'bare';
const one = process.env.REQUEST_CPU_ONE;

if (one) {
  // The server: prints its port, then its CPU in µs since `start` for each `stop` on stdin; ends with stdin.
  const [c, tree] = one.split('\t') as [Case, string];
  const dataDir = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'bench-request-cpu-'));
  const gateway = c === 'bare' ? { listen: bare, close: async () => undefined } : await gatewayOf(tree, dataDir, c === 'upload' ? 'real' : 'echo');
  const server = await gateway.listen();
  console.log(`port ${(server.address() as { port: number }).port}`);
  let t0 = process.cpuUsage();
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'start') t0 = process.cpuUsage();
    if (line !== 'stop') continue;
    const { user, system } = process.cpuUsage(t0);
    console.log(`cpu ${user + system}`);
  }
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await gateway.close();
  await fs.rm(dataDir, { recursive: true, force: true });
  process.exit(0);
}

/** CPU µs per request of `c` on `tree`'s server, after as many unmeasured requests. */
async function measure(c: Case, tree: string): Promise<number> {
  // npm start's V8 flags and loader, without its entry point: the flags up to `--import tsx`.
  const args = [...NPM_START_ARGS.slice(0, NPM_START_ARGS.indexOf('tsx') + 1), new URL(import.meta.url).pathname];
  const child = spawn(process.execPath, args, { env: { ...process.env, REQUEST_CPU_ONE: `${c}\t${tree}` }, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // A logger may write before the figures: only `port …` and `cpu …` lines are read.
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (prefix: string): Promise<number> => {
    for (let line = await lines.next(); !line.done; line = await lines.next()) if (line.value.startsWith(prefix)) return Number(line.value.slice(prefix.length));
    throw new Error(`the ${c} server for ${tree} ended early`);
  };
  const files = nextFiles();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = await next('port ');
    const send = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const status = await post(port, agent, files[i]!);
        if (status !== 201) throw new Error(`request ${i} answered ${status}`);
      }
    };
    await send(0, requests);
    child.stdin.write('start\n');
    await send(requests, 2 * requests);
    child.stdin.write('stop\n');
    return (await next('cpu ')) / requests;
  } finally {
    agent.destroy();
    child.stdin.end();
    await exited;
  }
}

const results = new Map<string, number[]>();
async function record(c: Case, tree: string): Promise<void> {
  const us = await measure(c, tree);
  const key = `${c}\t${tree}`;
  results.set(key, [...(results.get(key) ?? []), us]);
  console.error(`${c} ${tree}: ${us.toFixed(0)} µs per request, load ${os.loadavg()[0]!.toFixed(1)}`);
}

for (let run = 0; run < runs; run++) {
  await record('bare', '-');
  for (const tree of run % 2 ? [...trees].reverse() : trees) for (const c of ['echo', 'upload'] as const) await record(c, tree);
}

console.log(`Server CPU per request, µs (median of ${runs} runs of ${requests} sequential 100-row uploads; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})

| case | checkout | µs per request (runs) | median |
|---|---|--:|--:|
${[...results].map(([key, us]) => `| ${key.replace('\t', ' | ')} | ${us.map((u) => u.toFixed(0)).join(', ')} | ${median(us).toFixed(0)} |`).join('\n')}
`);
