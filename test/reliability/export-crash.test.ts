/**
 * What a SIGKILL during an export leaves, and what the next `npm start` makes
 * of it: an export recorded but never queued (killed between the two writes
 * of POST /exports) is run, a redelivered message does not run it a second
 * time beside the first, and the scratch file of an export killed mid-COPY
 * does not outlive the restart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { exportLedger, type ExportRecord } from '../../functions/core/exports.js';
import { newUploadId } from '../../functions/core/ids.js';
import type { ObjectInfo } from '../../functions/core/ports.js';
import { parseExportRequest } from '../../functions/exports/request.js';
import { exportedRows, type ExportStatus } from '../support/exports.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { send } from '../ingest/http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const csv = flightsCsv(60, 17);
const unitedRows = csv.split('\n').filter((line) => line.split(',')[10] === 'UA').length;

/** A pipeline holding `csv`, loaded. */
async function loaded(dataDir?: string): Promise<TestPipeline> {
  const pipeline = await startTestPipeline(dataDir ? { dataDir } : {});
  const up = await send(pipeline.url, csv);
  await eventually(async () => ((await request(pipeline.url).get(`/uploads/${up.body.uploadId}`)).body.status === 'loaded' ? true : undefined));
  return pipeline;
}

/** The record POST /exports writes before it queues the export. */
function runningExport(): ExportRecord {
  const { spec, columns } = parseExportRequest(new URLSearchParams('carrier=eq.UA&select=id,carrier'), '');
  const now = new Date().toISOString();
  return { exportId: newUploadId(), status: 'running', query: spec, columns, createdAt: now, updatedAt: now };
}

const settled = (url: string, exportId: string): Promise<ExportStatus> =>
  eventually(async () => {
    const body = (await request(url).get(`/exports/${exportId}`)).body as ExportStatus;
    return body.status === 'running' ? undefined : body;
  }, 30_000, `export ${exportId} to settle`);

async function rowsOf(done: ExportStatus): Promise<string[]> {
  const carriers: string[] = [];
  for await (const row of exportedRows(done.files!)) carriers.push(row.carrier!);
  return carriers;
}

describe('an export killed on its way', () => {
  it('recorded but never queued: the restart runs it, and the scratch file of one killed mid-COPY is gone', async () => {
    p = await loaded();
    const { dataDir } = p;
    await p.stop();
    const orphan = runningExport();
    await exportLedger(new FsObjectStore(path.join(dataDir, 'buckets'), p.rt.config.bucket)).create(orphan.exportId, orphan);
    const scratch = path.join(dataDir, 'warehouse.duckdb.exports');
    await fs.mkdir(path.join(scratch, 'flights-export-dead'), { recursive: true });
    await fs.writeFile(path.join(scratch, 'flights-export-dead', '000000000000.csv.gz'), 'half a gzip');

    p = await startTestPipeline({ dataDir });
    const done = await settled(p.url, orphan.exportId);
    expect(done).toMatchObject({ status: 'done', rows: unitedRows });
    expect(await rowsOf(done)).toEqual(Array(unitedRows).fill('UA'));
    expect(await fs.readdir(scratch)).toEqual([]);
  });

  it('queued twice (a redelivery beside the requeue): run once, its file written once', async () => {
    p = await loaded();
    const record = runningExport();
    const written: ObjectInfo[] = [];
    (p.rt.store as FsObjectStore).onFinalize(async (info) => void (info.name.startsWith(`exports/${record.exportId}/`) && written.push(info)));
    await p.rt.exports.create(record.exportId, record);
    const message = Buffer.from(JSON.stringify({ exportId: record.exportId }));
    await Promise.all([1, 2].map(() => p!.rt.bus.publish(p!.rt.config.exports.topic, message, { exportId: record.exportId })));

    const done = await settled(p.url, record.exportId);
    expect(done).toMatchObject({ status: 'done', rows: unitedRows });
    // The second message is acknowledged once the first run has settled the export.
    await eventually(async () => ((await p!.rt.bus.backlog!(p!.rt.config.exports.subscription)).messages === 0 ? true : undefined));
    expect(written).toHaveLength(1);
    expect(done.files).toEqual([expect.objectContaining({ bytes: written[0]!.size })]);
  });
});
