/**
 * Query benchmark (issue 5): 1 M generated flight rows loaded through the real
 * pipeline, then GET /getdata under autocannon on loopback at 1, 8 and 32
 * connections, each case next to the very same SQL run directly on DuckDB at
 * the same concurrency in the same run.
 *
 *   npx tsx bench/query.ts
 *
 * QUERY_BENCH_ROWS (default 1000000) and QUERY_BENCH_SECONDS (per case and
 * side, default 10) shrink it for a trial. Figures go to the console,
 * bench/out/query-<time>.json and the "Query" section of docs/benchmarks.md.
 *
 *   QUERY_BENCH_BEFORE_TREE=/path/to/other/checkout npx tsx bench/query.ts
 *
 * measures only issue 17's case (the mix while uploads arrive, API and
 * direct), QUERY_BENCH_PAIRS times (default 3) for each checkout, the two in
 * turn (ABBA) on the same loaded data, and prints a before/after table
 * (console and bench/out/query-ab-<time>.json; docs/benchmarks.md is left as
 * it is). The other checkout needs its node_modules (a symlink will do).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import autocannon from 'autocannon';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bindParams } from '../functions/adapters/duckdb/warehouse.js';
import { compileSelect, duckDbDialect } from '../functions/core/sql.js';
import { parseQuery } from '../functions/query/grammar.js';
import { probeSpec } from '../functions/query/handler.js';
import { flightsCsv } from '../test/support/generate-flights.js';
import {
  ROOT,
  envInt,
  getJson,
  machine,
  percentiles,
  sampleRss,
  since,
  startServer,
  tempDir,
  uploadFile,
  waitForLoad,
  writeFlightsFile,
  writeGenerated,
  type Percentiles,
  type ServerProcess,
} from './support.js';

const ROWS = envInt('QUERY_BENCH_ROWS', 1_000_000);
const SECONDS = envInt('QUERY_BENCH_SECONDS', 10);
const BEFORE_TREE = process.env.QUERY_BENCH_BEFORE_TREE;
const PAIRS = envInt('QUERY_BENCH_PAIRS', 3);
/** The issue's 8 and 32, and 1: without queueing, the gap between the two sides is the API's own cost per request. */
const CONCURRENCY = [1, 8, 32] as const;
/** Where the issue sets its targets. */
const TARGET_CONCURRENCY: readonly number[] = [8, 32];
/** Requests per query, on each side, before measuring: DuckDB reads the columns into its buffer pool and V8 warms up. */
const WARMUP = 20;
/** Known to both sides so the bench can parse the cursor the server signed, exactly as the server does. */
const CURSOR_SECRET = 'query-bench';
/** Targets from issue 5. */
const MAX_P95_RATIO = 1.5;
const MIX_P95_MS = 100;
/** Issue 17: the mix at this many connections again while small uploads arrive at this rate, at most this many in flight. */
const BUSY_CONNECTIONS = 8;
const BUSY_UPLOADS_PER_SECOND = 50;
const BUSY_MAX_IN_FLIGHT = 16;
/** Issue 17: the loader at ≥ 0.8× the speed of DuckDB's own read_csv into a table. */
const MIN_LOADER_RATIO = 0.8;

interface Case {
  name: string;
  /** Query string of GET /getdata. */
  query: string;
}

const FILTER = 'carrier=eq.AA&origin=eq.JFK&month=eq.7';
const SORTED = `${FILTER}&order=dep_delay.desc`;
const BASE_CASES: Case[] = [
  { name: 'first page', query: '' },
  { name: 'filtered page', query: FILTER },
  { name: 'filtered+sorted page', query: SORTED },
  // The keyset case is added once the sorted page has handed out its cursor.
  // All 120 carrier × month groups, not only the default 10 rows.
  { name: 'aggregate', query: 'select=carrier,month,dep_delay.avg()&order=carrier,month&limit=1000' },
];

/** A compiled statement, bound once: what DuckDbWarehouse.query runs for a request. */
interface Statement {
  sql: string;
  values: ReturnType<typeof bindParams>['values'];
  types: ReturnType<typeof bindParams>['types'];
}

function statementFor(query: string): Statement {
  const parsed = parseQuery(new URLSearchParams(query), { cursorSecret: CURSOR_SECRET });
  const compiled = compileSelect(probeSpec(parsed.spec), duckDbDialect());
  return { sql: compiled.sql, ...bindParams(compiled.params) };
}

interface Run extends Percentiles {
  requests: number;
  perSecond: number;
  /** Non-200 responses and connection errors; a run with any is not a valid measurement. */
  failures: number;
}

function summarize(latencies: number[], elapsedMs: number, failures: number): Run {
  return { ...percentiles(latencies), requests: latencies.length, perSecond: latencies.length / (elapsedMs / 1000), failures };
}

/** autocannon on the API; each connection walks `queries` in turn. Latencies come from its per-response event, so p95 exists (its histogram summary stops at p90 and p97.5). */
async function runApi(url: string, queries: string[], connections: number): Promise<Run> {
  const latencies: number[] = [];
  let failures = 0;
  const start = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url, connections, duration: SECONDS, requests: queries.map((q) => ({ method: 'GET', path: `/getdata${q ? `?${q}` : ''}` })) },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => (status === 200 ? latencies.push(ms) : failures++));
  });
  return summarize(latencies, since(start), failures + result.errors);
}

/** `connections` concurrent loops, one DuckDB connection each, for the same duration; loop i starts at statement i so a mix is spread from the first second. */
async function runDirect(pool: DuckDBConnection[], statements: Statement[], connections: number): Promise<Run> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  await Promise.all(
    pool.slice(0, connections).map(async (db, i) => {
      for (let k = i; performance.now() < deadline; k++) {
        const s = statements[k % statements.length]!;
        const t = performance.now();
        // Rows are turned into JS objects as the warehouse does: a Node caller has the rows only then.
        (await db.runAndReadAll(s.sql, s.values as never, s.types)).getRowObjectsJson();
        latencies.push(since(t));
      }
    }),
  );
  return summarize(latencies, since(start), 0);
}

interface Ingest {
  /** Answers by status; 0: the request failed without one. */
  statuses: Record<number, number>;
  /** Uploads posted per second, over the whole run: below the schedule when the in-flight bound held posting back. */
  perSecond: number;
}

const answers = (ingest: Ingest): string =>
  Object.entries(ingest.statuses)
    .map(([status, n]) => `${n} × ${status === '0' ? 'no answer' : status}`)
    .join(', ') + ` (${ingest.perSecond.toFixed(0)} posted/s)`;

/** Every file posted by any busy run is distinct, so none is answered as a duplicate. */
let busySeed = 1_000_000;

/**
 * Runs `work` while distinct 100-row files are posted to /upload on a fixed
 * schedule, `BUSY_UPLOADS_PER_SECOND`, at most `BUSY_MAX_IN_FLIGHT` at once;
 * stops posting when `work` ends and counts the answers.
 */
async function whileUploading<T>(url: string, work: Promise<T>): Promise<{ result: T; ingest: Ingest }> {
  const ingest: Ingest = { statuses: {}, perSecond: 0 };
  const count = (status: number): void => void (ingest.statuses[status] = (ingest.statuses[status] ?? 0) + 1);
  const inFlight = new Set<Promise<void>>();
  let done = false;
  const t0 = performance.now();
  const posting = (async () => {
    for (let i = 0; !done; i++) {
      const wait = t0 + (i * 1000) / BUSY_UPLOADS_PER_SECOND - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      while (inFlight.size >= BUSY_MAX_IN_FLIGHT) await Promise.race(inFlight);
      const body = flightsCsv(100, busySeed++);
      const answered: Promise<void> = fetch(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body })
        .then(async (res) => {
          await res.arrayBuffer();
          count(res.status);
        }, () => count(0))
        .finally(() => inFlight.delete(answered));
      inFlight.add(answered);
    }
  })();
  const result = await work;
  done = true;
  await posting;
  await Promise.all(inFlight);
  ingest.perSecond = Object.values(ingest.statuses).reduce((a, b) => a + b, 0) / (since(t0) / 1000);
  return { result, ingest };
}

interface Busy {
  api: Run;
  apiIngest: Ingest;
  direct: Run;
  directIngest: Ingest;
}

/** Issue 17's case: the mix at BUSY_CONNECTIONS while uploads arrive, through the API, then directly on DuckDB under the same uploads. */
async function busyMix(url: string, cases: Case[], pool: DuckDBConnection[], statements: Statement[]): Promise<Busy> {
  const api = await whileUploading(url, runApi(url, cases.map((c) => c.query), BUSY_CONNECTIONS));
  // The uploads take CPU from DuckDB as much as from the API, so this is the baseline that isolates the API's share.
  const direct = await whileUploading(url, runDirect(pool, statements, BUSY_CONNECTIONS));
  return { api: api.result, apiIngest: api.ingest, direct: direct.result, directIngest: direct.ingest };
}

const describeBusy = (b: Busy): string =>
  `API p50/p95 ${fmt(b.api.p50)}/${fmt(b.api.p95)} ms, ${b.api.requests} answered, uploads: ${answers(b.apiIngest)}; direct p50/p95 ${fmt(b.direct.p50)}/${fmt(b.direct.p95)} ms, uploads: ${answers(b.directIngest)}`;

/**
 * Before/after for issue 17's case: each checkout's server in turn on the same
 * data directory, warmed up, then busyMix; ABBA order so a drift of the
 * machine's load falls on both alike.
 */
async function compareBusy(before: string, dataDir: string, logFile: string, env: Record<string, string>, cases: Case[], pool: DuckDBConnection[], statements: Statement[]): Promise<void> {
  const runs: { pair: number; tree: 'before' | 'after'; load: number; busy: Busy }[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    const order = pair % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
    for (const tree of order) {
      const server = await startServer({ dataDir, logFile, env, root: tree === 'before' ? before : ROOT });
      for (const [i, c] of cases.entries()) await warmUp(server.url, pool, c, statements[i]!);
      const load = os.loadavg()[0]!;
      const busy = await busyMix(server.url, cases, pool, statements);
      await server.stop();
      runs.push({ pair, tree, load, busy });
      console.log(`pair ${pair + 1} ${tree.padEnd(6)} load ${load.toFixed(1)}: ${describeBusy(busy)}`);
    }
  }
  const rate = (i: Ingest): string => i.perSecond.toFixed(0);
  const table = [
    '| pair | checkout | load avg | API p50 | API p95 | answered | uploads/s | direct p50 | direct p95 | uploads/s | p95 ratio |',
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...runs.map(
      ({ pair, tree, load, busy: b }) =>
        `| ${pair + 1} | ${tree} | ${load.toFixed(1)} | ${fmt(b.api.p50)} | ${fmt(b.api.p95)} | ${b.api.requests} | ${rate(b.apiIngest)} | ${fmt(b.direct.p50)} | ${fmt(b.direct.p95)} | ${rate(b.directIngest)} | ${(b.api.p95 / b.direct.p95).toFixed(2)} |`,
    ),
  ].join('\n');
  console.log(`\nbefore: ${before}\n\n${table}\n`);
  const out = path.join(ROOT, 'bench', 'out');
  await fsp.mkdir(out, { recursive: true });
  await fsp.writeFile(path.join(out, `query-ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ before, rows: ROWS, seconds: SECONDS, cases, runs }, null, 2));
}

interface PageBody {
  rows: unknown[];
  next: string | null;
}

/** Warms both sides up and checks they agree on how many rows each query gives. */
async function warmUp(url: string, pool: DuckDBConnection[], c: Case, s: Statement): Promise<void> {
  let apiRows = 0;
  let directRows = 0;
  for (let i = 0; i < WARMUP; i++) apiRows = (await getJson<PageBody>(`${url}/getdata?${c.query}`)).rows.length;
  for (let i = 0; i < WARMUP; i++) directRows = (await pool[0]!.runAndReadAll(s.sql, s.values as never, s.types)).currentRowCount;
  const limit = parseQuery(new URLSearchParams(c.query), { cursorSecret: CURSOR_SECRET }).spec.limit;
  if (apiRows === 0 || apiRows !== Math.min(directRows, limit)) throw new Error(`${c.name}: the API gave ${apiRows} rows, DuckDB ${directRows} (limit ${limit})`);
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface Row {
  query: string;
  connections: number;
  api: Run;
  direct: Run;
}

async function main(): Promise<void> {
  const dir = await tempDir('query-bench-');
  const csv = path.join(dir, 'flights.csv');
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  // The server admits as many uploads at once as the busy run keeps in flight; with fewer (8 by default) the rest are refused 429 and never arrive.
  const env = { CURSOR_SECRET, MAX_CONCURRENT_UPLOADS: String(BUSY_MAX_IN_FLIGHT) };
  const host = machine();
  const startedAt = new Date();
  // Other work on a shared machine shows here; both sides of a row ran back to back under the same load.
  const loadBefore = os.loadavg()[0]!;
  console.log(`query bench: ${ROWS} rows, ${SECONDS} s per case, ${host.nproc} cpus, node ${host.node}; work in ${dir}`);

  let t = performance.now();
  const bytes = await writeFlightsFile(csv, ROWS);
  const generateMs = since(t);
  console.log(`generated ${bytes} bytes in ${seconds(generateMs)}`);

  // Load through the real pipeline: POST /upload, then the bus and the loader, until the ledger says loaded.
  let server: ServerProcess = await startServer({ dataDir, logFile, env });
  let rss = sampleRss(server.pid);
  t = performance.now();
  const upload = await uploadFile(server.url, csv);
  const uploadMs = since(t);
  const loaded = await waitForLoad(server.url, upload.uploadId);
  const loadMs = since(t);
  const loadRssMiB = rss.stop();
  if (loaded.loadedRows !== ROWS) throw new Error(`loaded ${loaded.loadedRows} rows, expected ${ROWS}`);
  console.log(`pipeline: 201 after ${seconds(uploadMs)}, loaded after ${seconds(loadMs)} (stored → queryable ${seconds(loadMs - uploadMs)}); server peak RSS ${loadRssMiB.toFixed(0)} MiB`);

  // A clean stop checkpoints the database file, so a copy of it is complete; the direct side reads the copy
  // because DuckDB lets only one process open a file for writing.
  await server.stop();
  const warehouseFile = path.join(dataDir, 'warehouse.duckdb');
  const directFile = path.join(dir, 'direct.duckdb');
  await fsp.copyFile(warehouseFile, directFile);

  // Baseline for the load: DuckDB's own CSV reader on the same file into a fresh table, sniffing types itself.
  const copyFile = path.join(dir, 'copy.duckdb');
  const copyDb = await DuckDBInstance.create(copyFile);
  const copyConn = await copyDb.connect();
  t = performance.now();
  await copyConn.run('CREATE TABLE flights AS SELECT * FROM read_csv($path, header = true)', { path: csv });
  await copyConn.run('CHECKPOINT');
  const copyMs = since(t);
  const copyRows = Number((await copyConn.runAndReadAll('SELECT count(*) FROM flights')).getRows()[0]![0]);
  copyConn.closeSync();
  copyDb.closeSync();
  await fsp.rm(copyFile);
  if (copyRows !== ROWS) throw new Error(`DuckDB read ${copyRows} rows, expected ${ROWS}`);
  console.log(`DuckDB read_csv into a fresh table: ${seconds(copyMs)}`);

  server = await startServer({ dataDir, logFile, env });
  const directDb = await DuckDBInstance.create(directFile, { access_mode: 'READ_ONLY' });
  const pool: DuckDBConnection[] = [];
  for (let i = 0; i < Math.max(...CONCURRENCY); i++) pool.push(await directDb.connect());

  // The keyset case follows the real cursor the sorted first page hands out.
  const first = await getJson<PageBody>(`${server.url}/getdata?${SORTED}`);
  if (!first.next) throw new Error('the sorted first page has no next link');
  const cases: Case[] = [...BASE_CASES.slice(0, 3), { name: 'keyset next page', query: first.next.split('?')[1]! }, ...BASE_CASES.slice(3)];
  const statements = cases.map((c) => statementFor(c.query));
  if (BEFORE_TREE) {
    await server.stop();
    await compareBusy(BEFORE_TREE, dataDir, logFile, env, cases, pool, statements);
    for (const c of pool) c.closeSync();
    directDb.closeSync();
    await fsp.rm(dir, { recursive: true, force: true });
    return;
  }
  for (const [i, c] of cases.entries()) await warmUp(server.url, pool, c, statements[i]!);

  rss = sampleRss(server.pid);
  const rows: Row[] = [];
  for (const connections of CONCURRENCY) {
    const runs: [string, string[], Statement[]][] = [
      ...cases.map((c, i): [string, string[], Statement[]] => [c.name, [c.query], [statements[i]!]]),
      ['mix (all five in turn)', cases.map((c) => c.query), statements],
    ];
    for (const [name, queries, stmts] of runs) {
      const api = await runApi(server.url, queries, connections);
      const direct = await runDirect(pool, stmts, connections);
      rows.push({ query: name, connections, api, direct });
      console.log(
        `${name.padEnd(24)} c=${String(connections).padEnd(3)} API p50/p95/p99 ${fmt(api.p50)}/${fmt(api.p95)}/${fmt(api.p99)} ms ${api.perSecond.toFixed(0)} req/s` +
          ` | direct ${fmt(direct.p50)}/${fmt(direct.p95)}/${fmt(direct.p99)} ms ${direct.perSecond.toFixed(0)} q/s${api.failures ? ` | ${api.failures} FAILED` : ''}`,
      );
    }
  }
  const mixName = `mix while ${BUSY_UPLOADS_PER_SECOND} uploads/s arrive`;
  const busy = await busyMix(server.url, cases, pool, statements);
  rows.push({ query: mixName, connections: BUSY_CONNECTIONS, api: busy.api, direct: busy.direct });
  console.log(`${mixName} c=${BUSY_CONNECTIONS} ${describeBusy(busy)}`);
  const queryRssMiB = rss.stop();
  const loadAfter = os.loadavg()[0]!;
  await server.stop();
  for (const c of pool) c.closeSync();
  directDb.closeSync();

  const failed = rows.filter((r) => r.api.failures > 0);
  const mix8 = rows.find((r) => r.connections === 8 && r.query.startsWith('mix'))!;
  const mixBusy = rows.at(-1)!;
  const met = (ok: boolean): string => (ok ? 'met' : '**not met**');
  const ratio = (r: Row): number => r.api.p95 / r.direct.p95;
  // The loader starts when the promoted object's notification arrives, just before the 201; what follows the 201 is what a client waits for.
  const storedToQueryableMs = loadMs - uploadMs;
  const loaderRatio = copyMs / storedToQueryableMs;
  const table = [
    '| query | conn | API p50 | API p95 | API p99 | API req/s | direct p50 | direct p95 | direct p99 | direct q/s | p95 ratio | ≤ 1.5× |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ...rows.map(
      (r) =>
        `| ${r.query} | ${r.connections} | ${fmt(r.api.p50)} | ${fmt(r.api.p95)} | ${fmt(r.api.p99)} | ${r.api.perSecond.toFixed(0)} | ` +
        `${fmt(r.direct.p50)} | ${fmt(r.direct.p95)} | ${fmt(r.direct.p99)} | ${r.direct.perSecond.toFixed(0)} | ${ratio(r).toFixed(2)} | ${TARGET_CONCURRENCY.includes(r.connections) ? met(ratio(r) <= MAX_P95_RATIO) : '–'} |`,
    ),
  ];
  const ratioMet = TARGET_CONCURRENCY.map((c) => `${c} connections: ${met(rows.filter((r) => r !== mixBusy && r.connections === c).every((r) => ratio(r) <= MAX_P95_RATIO))}`);
  const generated = [
    `Run ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${host.nproc} CPUs (${host.cpu}), ${host.memoryGiB} GiB, ${host.platform}, Node ${host.node}; a shared machine (1-minute load average ${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} after the query runs), so figures move by tens of percent between runs.`,
    '',
    `Command: \`npx tsx bench/query.ts\` (${ROWS.toLocaleString('en')} rows, ${SECONDS} s per case and side, ${WARMUP} warm-up requests per query on each side).`,
    '',
    '**Load** of the generated file through the real pipeline (server as a child process, one `text/csv` upload streamed from disk):',
    '',
    '| step | time |',
    '|---|--:|',
    `| generate ${ROWS.toLocaleString('en')} rows, ${(bytes / 1e6).toFixed(1)} MB | ${seconds(generateMs)} |`,
    `| POST /upload until 201 (validated, canonical CSV stored) | ${seconds(uploadMs)} |`,
    `| POST /upload until GET /uploads/{id} says loaded | ${seconds(loadMs)} (${((ROWS / loadMs) * 1000).toFixed(0)} rows/s) |`,
    `| stored → queryable: from the 201 until loaded (the loader's own time, polled every 50 ms) | ${seconds(storedToQueryableMs)} |`,
    `| baseline: DuckDB's own \`CREATE TABLE AS SELECT * FROM read_csv(…)\` + CHECKPOINT, same file, fresh database | ${seconds(copyMs)} |`,
    '',
    `Loader speed ÷ DuckDB's read_csv (read_csv time ÷ stored → queryable): ${loaderRatio.toFixed(2)}×; target ≥ ${MIN_LOADER_RATIO}× (issue 17): ${met(loaderRatio >= MIN_LOADER_RATIO)}.`,
    '',
    `Server peak RSS: ${loadRssMiB.toFixed(0)} MiB during the load, ${queryRssMiB.toFixed(0)} MiB during the query runs.`,
    '',
    '**Queries**, latencies in ms. API: autocannon on 127.0.0.1 against the server process, `conn` connections. Direct: the same statement',
    '(parseQuery → the handler\'s probeSpec → compileSelect with the DuckDB dialect, bound as the warehouse binds) on a read-only DuckDB',
    'over a copy of the loaded database file, in the benchmark process, `conn` loops over a pool of `conn` connections, rows read into JS objects.',
    '',
    ...table,
    '',
    `Targets: API p95 ≤ ${MAX_P95_RATIO}× direct p95 at each concurrency, without ingest: ${ratioMet.join('; ')}. Mix p95 at 8 connections < ${MIX_P95_MS} ms: ${met(mix8.api.p95 < MIX_P95_MS)} (${fmt(mix8.api.p95)} ms; DuckDB alone: ${fmt(mix8.direct.p95)} ms).`,
    '',
    `While ${BUSY_UPLOADS_PER_SECOND} distinct 100-row files/s were posted to the server (≤ ${BUSY_MAX_IN_FLIGHT} in flight), the mix at ${BUSY_CONNECTIONS} connections (last row), once through the API (uploads: ${answers(busy.apiIngest)}; ${mixBusy.api.requests} queries answered) and once directly on DuckDB (uploads: ${answers(busy.directIngest)}): API p95 ${fmt(mixBusy.api.p95)} ms, ${ratio(mixBusy).toFixed(2)}× direct (${fmt(mixBusy.direct.p95)} ms); ≤ ${MAX_P95_RATIO}× (issue 17): ${met(ratio(mixBusy) <= MAX_P95_RATIO)}; < ${MIX_P95_MS} ms: ${met(mixBusy.api.p95 < MIX_P95_MS)}.`,
    ...(failed.length ? ['', `Non-200 responses or connection errors in: ${failed.map((r) => `${r.query} @ ${r.connections}`).join(', ')}; those rows are not valid.`] : []),
    '',
    'The queries (`GET /getdata?…`):',
    '',
    ...cases.map((c, i) => `- ${c.name}: \`${c.query ? `?${c.query.length > 120 ? `${c.query.slice(0, 117)}…` : c.query}` : '(no parameters)'}\`${i === 3 ? ' (the real next link of the sorted page)' : ''}`),
  ].join('\n');

  console.log(`\n${generated}\n`);
  const out = path.join(ROOT, 'bench', 'out');
  await fsp.mkdir(out, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  await fsp.writeFile(
    path.join(out, `query-${stamp}.json`),
    JSON.stringify({ startedAt, host, rows: ROWS, seconds: SECONDS, bytes, generateMs, uploadMs, loadMs, storedToQueryableMs, copyMs, loadRssMiB, queryRssMiB, loadBefore, loadAfter, cases, results: rows }, null, 2),
  );
  await writeGenerated(path.join(ROOT, 'docs', 'benchmarks.md'), 'Query', 'query-bench', generated);
  await fsp.rm(dir, { recursive: true, force: true });
  if (failed.length) process.exitCode = 1;
}

await main();
