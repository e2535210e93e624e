/**
 * The reliability harness. Each scenario ends with the reconciliation check
 * (support/reconciliation.ts). `npm test` runs the short version; `npm run
 * test:reliability` the long one (RELIABILITY_KILLS=50 and more files).
 * Each scenario prints one `reliability:` line with its figures, as
 * docs/reliability.md reports them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { UploadRecord } from '../../functions/core/uploads.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { tempDir } from '../support/temp.js';
import { uploadUntilAnswered, type Outcome } from './support/client.js';
import { exportUntilDone, type ExportOutcome } from './support/export-client.js';
import { reconcile, type Acknowledged, type Reconciliation } from './support/reconciliation.js';
import { signedUploadUntilSettled } from './support/signed-client.js';
import { startServer, type ServerProcess } from './support/server.js';

const KILLS = Number(process.env.RELIABILITY_KILLS ?? 2);
const BUCKET = 'flights-local';

/** File `i` of a run: distinct rows per file; every tenth spoiled so that it is refused with 422. */
const fileOf = (run: number, i: number): string => {
  const csv = flightsCsv(10 + (i % 7), run * 100_000 + i);
  return i % 10 === 9 ? csv.replace(/,2013,/, ',2013x,') : csv;
};

/** The seed's rows carry a tail number no other file has: the exports' filter. */
const SEED_TAIL = 'N0SEED';
const SEED_EXPORT = `tailnum=eq.${SEED_TAIL}&select=id,carrier,tailnum&order=id`;
const seedCsv = (): string => {
  const [header, ...lines] = flightsCsv(3000, 424242).trimEnd().split('\n');
  const tail = header!.split(',').indexOf('tailnum');
  return [header, ...lines.map((l) => l.split(',').map((c, i) => (i === tail ? SEED_TAIL : c)).join(','))].join('\n') + '\n';
};
const dataRows = (csv: string): number => csv.trimEnd().split('\n').length - 1;

const statusOf = async (url: () => string, id: string): Promise<string | undefined> => {
  const res = await fetch(`${url()}/uploads/${id}`).catch(() => undefined);
  return res?.ok ? ((await res.json()) as UploadRecord).status : undefined;
};

/** Splits outcomes, then waits until every acknowledged upload's record is final. */
async function settle(outcomes: Outcome[], status: (uploadId: string) => Promise<string | undefined>): Promise<{ acknowledged: Acknowledged[]; refused: number }> {
  const acknowledged = outcomes.flatMap((o) => ('acknowledged' in o ? [o.acknowledged] : []));
  for (const a of acknowledged) {
    await eventually(async () => (['loaded', 'failed', 'duplicate'].includes((await status(a.uploadId)) ?? '') ? true : undefined), 120_000, `${a.uploadId} settled`);
  }
  return { acknowledged, refused: outcomes.length - acknowledged.length };
}

function report(scenario: string, runs: number, r: Reconciliation, extra: Record<string, unknown> = {}): void {
  console.log(`reliability: ${JSON.stringify({ scenario, runs, files: r.files, rows: r.rows, lost: r.lost, duplicated: r.duplicated, ...extra })}`);
}

function expectReconciled(r: Reconciliation): void {
  expect({ lost: r.lost, duplicated: r.duplicated, leftovers: r.leftovers, unsettled: r.unsettled, unexplained: r.unexplained, brokenExports: r.exports.broken }).toEqual({
    lost: 0,
    duplicated: 0,
    leftovers: [],
    unsettled: [],
    unexplained: 0,
    brokenExports: [],
  });
}

let pipeline: TestPipeline | undefined;
let server: ServerProcess | undefined;
afterEach(async () => {
  await pipeline?.stop();
  await server?.kill();
  pipeline = server = undefined;
});

describe('reliability scenarios', () => {
  it('200 parallel uploads from 20 clients, one in ten invalid: every valid row once, every invalid file refused with a reason', async () => {
    pipeline = await startTestPipeline();
    const p = pipeline;
    const clients = Array.from({ length: 20 }, async (_, c) => {
      const outcomes: Outcome[] = [];
      for (let i = c * 10; i < c * 10 + 10; i++) outcomes.push(await uploadUntilAnswered(() => p.url, fileOf(1, i), `parallel-${i}`));
      return outcomes;
    });
    const outcomes = (await Promise.all(clients)).flat();
    const { acknowledged, refused } = await settle(outcomes, async (id) => (await p.rt.ledger.get(id))?.status);
    expect(refused).toBe(20);
    await p.stop();
    pipeline = undefined;
    const r = await reconcile(p.dataDir, BUCKET, acknowledged, outcomes.flatMap((o) => ('refused' in o ? [o.refused] : [])));
    report('200 parallel uploads, 20 clients, 10% invalid', 1, r, { refused });
    expect(r.files).toBe(180);
    expectReconciled(r);
  }, 180_000);

  it(`SIGKILL of npm start at ${KILLS} random points under uploads, signed sessions and exports: nothing acknowledged is lost or doubled, every retry gets in, every export is whole or failed`, async () => {
    const dataDir = await tempDir();
    server = await startServer(dataDir);
    let current = server;
    const url = (): string => current.url;
    // What every export asks for: rows uploaded before the first kill and by nobody after, so the right count is known.
    const seed = await uploadUntilAnswered(url, seedCsv(), 'seed');
    expect('acknowledged' in seed).toBe(true);
    const seedAck = (seed as { acknowledged: Acknowledged }).acknowledged;
    await eventually(async () => ((await statusOf(url, seedAck.uploadId)) === 'loaded' ? true : undefined), 60_000, 'the seed file loaded');

    const files = Math.max(20, KILLS * 8);
    const signedFiles = Math.max(10, KILLS * 2);
    let next = 0;
    let nextSigned = 0;
    const outcomes: Outcome[] = [];
    const signedOutcomes: Outcome[] = [];
    const exportOutcomes: ExportOutcome[] = [];
    let killing = true;
    // While the kills go on the server is mostly restarting (up for 0.15–1.35 s between restarts of 5–20 s), and a
    // signed upload needs a dozen answered requests: a file's deadline runs from the last kill, not from its start.
    const deadline = (): number => Date.now() + 300_000 + (killing ? KILLS * 20_000 : 0);
    // What was under way when each kill came, as the clients see it: signed uploads not yet settled, an export not yet read.
    const inFlight = { signed: 0, exporting: false };
    const killedDuring = { signedSessions: 0, exports: 0 };
    // Four inline clients and two signed ones, each sending its next file as soon as its last was answered.
    const inline = Array.from({ length: 4 }, async () => {
      while (next < files) {
        const i = next++;
        outcomes.push(await uploadUntilAnswered(url, fileOf(2, i), `kill-${i}`, deadline()));
      }
    });
    const signed = Array.from({ length: 2 }, async () => {
      while (nextSigned < signedFiles) {
        const i = nextSigned++;
        const csv = fileOf(3, i);
        inFlight.signed++;
        signedOutcomes.push(await signedUploadUntilSettled(url, csv, dataRows(csv), `signed-kill-${i}`, deadline()));
        inFlight.signed--;
      }
    });
    // One export client, one export after another for as long as the kills go on, and one after.
    const exporter = (async () => {
      do {
        inFlight.exporting = true;
        exportOutcomes.push(await exportUntilDone(url, SEED_EXPORT, (row) => row.tailnum === SEED_TAIL, deadline()));
        inFlight.exporting = false;
      } while (killing);
    })();
    const recoveries: number[] = [];
    const killer = (async () => {
      for (let k = 0; k < KILLS; k++) {
        await new Promise((r) => setTimeout(r, 150 + Math.random() * 1200));
        const killedAt = performance.now();
        if (inFlight.signed) killedDuring.signedSessions++;
        if (inFlight.exporting) killedDuring.exports++;
        await current.kill();
        current = await startServer(dataDir);
        server = current;
        recoveries.push(performance.now() - killedAt);
      }
      killing = false;
    })();
    await Promise.all([killer, ...inline, ...signed, exporter]);
    const { acknowledged, refused } = await settle([...outcomes, ...signedOutcomes], (id) => statusOf(url, id));
    await current.stop();
    server = undefined;
    const all = [...outcomes, ...signedOutcomes];
    const r = await reconcile(dataDir, BUCKET, [seedAck, ...acknowledged], all.flatMap((o) => ('refused' in o ? [o.refused] : [])));
    const attempts = all.map((o) => o.attempts);
    report('SIGKILL of npm start under uploads, signed sessions and exports', KILLS, r, {
      refused,
      signedFiles,
      exports: exportOutcomes.length,
      exportsFailedAndRetried: exportOutcomes.reduce((n, e) => n + e.failed.length, 0),
      retries: attempts.reduce((a, b) => a + b, 0) - attempts.length,
      killedDuring,
      maxRecoveryMs: Math.round(Math.max(...recoveries)),
    });
    expect(refused).toBe(Math.floor(files / 10) + Math.floor(signedFiles / 10));
    expect(r.files + refused).toBe(1 + files + signedFiles);
    expect(exportOutcomes.map((e) => e.rows)).toEqual(exportOutcomes.map(() => seedAck.rows));
    expectReconciled(r);
    expect(r.exports.done).toBeGreaterThanOrEqual(exportOutcomes.length);
  }, 180_000 + KILLS * 40_000);
});
