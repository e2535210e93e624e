/**
 * Signed-upload validation rate (issue 17): `npx tsx bench/signed-validation.ts`.
 * The landing validator (functions/uploads/validate.ts) runs a landed file
 * through `stageUpload`: digest, validator, canonical digest, staging object.
 * This times that very path on a generated file, read from disk and staged
 * into a filesystem bucket, against a bare pass of our own CSV reader over the
 * same file, and the same path with the validator on a worker thread
 * (VALIDATION_THREADS=1), interleaved RUNS times (best of each, so a burst of
 * load on the shared machine hurts neither side more). The rate bounds the largest file the
 * cloud validator finishes within its timeout, compared here with the cap
 * config.ts derives from VALIDATOR_BYTES_PER_SECOND.
 *
 * SIGNED_BENCH_MB (default 100) sizes the file. Figures go to the console and
 * the "Signed-upload validation" section of docs/benchmarks.md.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../functions/adapters/local/fs-store.js';
import { SIGNED_UPLOAD_CAP, VALIDATOR_BYTES_PER_SECOND } from '../functions/core/config.js';
import { EVENT_FUNCTION_TIMEOUT_SECONDS } from '../functions/core/topology.js';
import { MAX_FAULTS } from '../functions/ingest/handler.js';
import { discardStaged, stageUpload } from '../functions/ingest/store-upload.js';
import { DEFAULT_LIMITS } from '../functions/ingest/validator.js';
import { ROOT, bareRead, machine, since, tempDir, writeFlightsFile, writeGenerated } from './support.js';

const MB = 1e6;
const MiB = 2 ** 20;
const RUNS = 3;
const SIZE_MB = Number(process.env.SIGNED_BENCH_MB ?? 100);
/** A generated row is about 114 bytes; writeFlightsFile takes a row count. */
const ROWS = Math.round((SIZE_MB * MB) / 114);

const work = await tempDir('bench-signed-');
try {
  const file = path.join(work, 'landed.csv');
  const bytes = await writeFlightsFile(file, ROWS);
  const store = new FsObjectStore(path.join(work, 'bucket'), 'bench');
  const limits = { ...DEFAULT_LIMITS, maxFaults: MAX_FAULTS };

  /** What validate.ts's accept() does before the promotion: stage the landed bytes; ms. */
  async function stage(run: number, validationThreads = 0): Promise<number> {
    const t0 = performance.now();
    const staged = await stageUpload({ store, limits: { ...limits, validationThreads } }, { stream: fs.createReadStream(file), decoders: [] }, { uploadId: `bench-${run}-${validationThreads}`, contentType: 'text/csv' });
    const ms = since(t0);
    await discardStaged(store, staged);
    return ms;
  }

  let bestBare = Infinity;
  let bestStage = Infinity;
  let bestThreaded = Infinity;
  for (let run = 0; run < RUNS; run++) {
    bestBare = Math.min(bestBare, await bareRead(file));
    bestStage = Math.min(bestStage, await stage(run));
    bestThreaded = Math.min(bestThreaded, await stage(run, 1));
  }
  const rate = (ms: number): number => bytes / MiB / (ms / 1000);
  const stageRate = rate(bestStage);
  const bareRate = rate(bestBare);
  const ratio = stageRate / bareRate;
  const threadedRate = rate(bestThreaded);
  const finishesGiB = (stageRate * EVENT_FUNCTION_TIMEOUT_SECONDS) / 1024;
  const capGiB = SIGNED_UPLOAD_CAP / 2 ** 30;
  const capSeconds = SIGNED_UPLOAD_CAP / MiB / stageRate;
  const [load1] = os.loadavg();
  const m = machine();
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const table = `Run ${date} UTC, ${(bytes / MB).toFixed(0)} MB generated file (${ROWS.toLocaleString('en')} rows), best of ${RUNS} interleaved runs,
${m.nproc} × ${m.cpu}, Node ${m.node}, load average ${load1!.toFixed(1)} (1 min) at the end.

| figure | value | baseline (same run) | ratio | target | met |
|---|--:|--:|--:|--:|---|
| signed-upload validation (stageUpload: digest, validator, staging object) | ${stageRate.toFixed(1)} MiB/s | bare reader ${bareRate.toFixed(1)} MiB/s | ${ratio.toFixed(2)}× | ≥ 0.8× (inline target) | ${ratio >= 0.8 ? 'met' : 'not met'} |
| same, the validator on a worker thread (VALIDATION_THREADS=1) | ${threadedRate.toFixed(1)} MiB/s | bare reader ${bareRate.toFixed(1)} MiB/s | ${(threadedRate / bareRate).toFixed(2)}× | ≥ 0.8× (inline target) | ${threadedRate / bareRate >= 0.8 ? 'met' : 'not met'} |
| largest file validated within ${EVENT_FUNCTION_TIMEOUT_SECONDS} s at that rate | ${finishesGiB.toFixed(2)} GiB | signed-upload cap ${capGiB.toFixed(2)} GiB (config.ts: ${(VALIDATOR_BYTES_PER_SECOND / MiB).toFixed(0)} MiB/s × ${EVENT_FUNCTION_TIMEOUT_SECONDS / 2} s) | ${(finishesGiB / capGiB).toFixed(2)}× | cap validated in ≤ ${EVENT_FUNCTION_TIMEOUT_SECONDS / 2} s | ${capSeconds <= EVENT_FUNCTION_TIMEOUT_SECONDS / 2 ? 'met' : 'not met'} (${capSeconds.toFixed(0)} s here) |`;
  console.log(table);
  await writeGenerated(path.join(ROOT, 'docs/benchmarks.md'), 'Signed-upload validation', 'signed-validation-bench', table);
} finally {
  await fsp.rm(work, { recursive: true, force: true });
}
