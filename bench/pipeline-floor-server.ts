/**
 * bench/ingest.ts's pipeline floor: the least a server must do per upload to validate it, keep it
 * and load it into DuckDB exactly once, each part the cheapest way we have. In an Express route (as
 * our handlers run under `npm start`): the body read whole, checked by our validator as the
 * small-body path does (checkWhole), its canonical bytes made durable once (a temp file renamed;
 * synchronous, as our local store does), a JSON answer. In the same process a loader takes what
 * arrived while its previous batch loaded (and in a gather of 50 ms, as ours) and loads it in one
 * transaction (bench/pipeline-floor.ts, `LOADER`: read_csv or appender). No bus, no records, no
 * gateway, no logs, no metrics.
 * `STEPS` (bench/ingest.ts's durable steps, JSON): per upload, beside its object, these atomic file
 * replacements too, made before the answer; those `removedOnceLoaded` are removed after its batch
 * loads: the floor with our design's durable steps and none of its code.
 * `GET /stats`, once the loader is idle: rows and files in DuckDB, uploads taken, and the batch
 * sizes since the last call. Prints its port. `SINK`: where its files and database go.
 */
import express from 'express';
import fs from 'node:fs';
import path from 'node:path';
import { checkWhole, DEFAULT_LIMITS, InvalidCsvError } from '../functions/ingest/validator.js';
import { FLOOR_BATCH_FILES, openFloorDb, type FloorFile, type LoaderName } from './pipeline-floor.js';

const sink = process.env.SINK!;
const objects = path.join(sink, 'objects');
fs.mkdirSync(objects);
const steps = JSON.parse(process.env.STEPS ?? '[]') as { file: string; bytes: number; removedOnceLoaded?: boolean }[];
for (const dir of new Set(steps.map((s) => s.file))) fs.mkdirSync(path.join(sink, dir));
const removedOnceLoaded = [...new Set(steps.filter((s) => s.removedOnceLoaded).map((s) => s.file))];

function replace(file: string, bytes: Buffer): void {
  fs.writeFileSync(`${file}.tmp`, bytes);
  fs.renameSync(`${file}.tmp`, file);
}
const db = await openFloorDb(sink, (process.env.LOADER ?? 'read_csv') as LoaderName);

const pending: FloorFile[] = [];
let batchSizes: number[] = [];
let taken = 0;
let loading: Promise<void> | undefined;
/**
 * Each batch first waits this long for more files, as our loader's flush does under `npm start`
 * (FLUSH_GATHER_MS, 50 by default): a transaction costs DuckDB milliseconds of CPU however few
 * files it holds, so without it a slow arrival rate would load one file per transaction.
 */
const GATHER_MS = Number(process.env.FLUSH_GATHER_MS ?? 50);

/** One batch at a time; what arrives meanwhile is the next. A failed load ends the process: a floor that loses rows measures nothing. */
function kick(): void {
  loading ??= (async () => {
    while (pending.length) {
      await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
      const batch = pending.splice(0, FLOOR_BATCH_FILES);
      batchSizes.push(batch.length);
      await db.load(batch);
      for (const { generation } of batch) for (const dir of removedOnceLoaded) fs.unlinkSync(path.join(sink, dir, String(generation)));
    }
    loading = undefined;
  })().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}

const app = express();
app.post('/upload', (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let canonical: Buffer;
    try {
      const checked = checkWhole(Buffer.concat(chunks), DEFAULT_LIMITS);
      canonical = checked.canonical.length === 1 ? checked.canonical[0]! : Buffer.concat(checked.canonical);
    } catch (e) {
      if (!(e instanceof InvalidCsvError)) throw e;
      res.status(e.status).type('application/problem+json').json({ title: 'invalid CSV', faults: e.faults });
      return;
    }
    const n = taken++;
    replace(path.join(objects, `${n}.csv`), canonical);
    const generation = BigInt(n + 1);
    for (const step of steps) replace(path.join(sink, step.file, String(generation)), Buffer.alloc(step.bytes, 32));
    pending.push({ object: `incoming/${n}.csv`, generation, canonical });
    kick();
    res.status(201).json({});
  });
});
app.get('/stats', async (_req, res) => {
  await loading;
  const stats = { ...(await db.counts()), taken, batchSizes };
  batchSizes = [];
  res.json(stats);
});
const server = app.listen(0, '127.0.0.1', () => console.log((server.address() as { port: number }).port));
