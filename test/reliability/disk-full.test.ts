/**
 * A full disk (finding 8): an upload is refused 507 with Retry-After and
 * leaves nothing behind; the bus failing to record a nack does not end the
 * process; the server starts with the disk still full and works again once
 * space returns. First with ENOSPC injected into the filesystem calls, then,
 * where the machine lets a test mount one, on a real small tmpfs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DurableLocalBus } from '../../functions/adapters/local/durable-bus.js';
import type { SubscriptionSpec } from '../../functions/core/ports.js';
import { flightsCsv } from '../support/generate-flights.js';
import { eventually, quietLogger, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { tempDir } from '../support/temp.js';
import { names, send } from '../ingest/http.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await p?.stop();
  p = undefined;
});

const enospc = (op: string, file: unknown): Error => Object.assign(new Error(`ENOSPC: no space left on device, ${op} '${String(file)}'`), { code: 'ENOSPC' });

/**
 * Every later small-file write under `dir` fails as on a full disk, until the returned function is called;
 * so does a rename into it, which a full disk refuses when the directory must grow (the bus counts a delivery by one).
 */
function fillDisk(dir: string): () => void {
  const write = fs.writeFileSync.bind(fs);
  const rename = fs.renameSync.bind(fs);
  const spies = [
    vi.spyOn(fs, 'writeFileSync').mockImplementation((file, ...rest) => {
      if (String(file).startsWith(dir)) throw enospc('write', file);
      return write(file, ...rest);
    }),
    vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (String(to).startsWith(dir)) throw enospc('rename', to);
      return rename(from, to);
    }),
  ];
  return () => spies.forEach((spy) => spy.mockRestore());
}

const csv = flightsCsv(20, 11);

async function leftovers(dataDir: string, t: TestPipeline): Promise<Record<string, string[]>> {
  const files = fs.readdirSync(dataDir, { recursive: true }).map(String);
  return {
    incoming: await names(t.rt.store, 'incoming/'),
    staging: await names(t.rt.store, 'staging/'),
    uploads: await names(t.rt.store, 'uploads/'),
    temp: files.filter((f) => f.endsWith('.tmp') || f.includes(`${path.sep}tmp${path.sep}`)),
  };
}

describe('disk full (injected ENOSPC)', () => {
  it('answers an upload 507 with Retry-After, keeps nothing of it, and takes it once space returns', async () => {
    p = await startTestPipeline();
    const freeSpace = fillDisk(p.dataDir);
    const refused = await send(p.url, csv);
    expect(refused.status).toBe(507);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body.type).toBe('/problems/insufficient-storage');
    freeSpace();
    expect(await leftovers(p.dataDir, p)).toEqual({ incoming: [], staging: [], uploads: [], temp: [] });
    const accepted = await send(p.url, csv);
    expect(accepted.status).toBe(201);
  });

  it('survives a nack it cannot record, delivers the message once space returns, and starts without writing', async () => {
    const root = await tempDir();
    const spec: SubscriptionSpec = { name: 's', topic: 't', maxDeliveryAttempts: 5, deadLetterTopic: 'dl', minBackoffMs: 10, maxBackoffMs: 50 };
    const bus = new DurableLocalBus(root, quietLogger());
    let full: (() => void) | undefined;
    const delivered: number[] = [];
    await bus.subscribe(spec, async (m) => {
      delivered.push(m.deliveryAttempt);
      // The first delivery fails, and the disk fills before the bus can record the nack.
      if (m.deliveryAttempt === 1) {
        full = fillDisk(root);
        throw new Error('handler failed');
      }
    });
    await bus.publish('t', Buffer.from('x'));
    await eventually(async () => (full ? true : undefined));
    await new Promise((r) => setTimeout(r, 200)); // a few retries with the disk full: the process lives on
    expect(delivered).toEqual([1]);
    // Restarting with the disk still full: the subscription is unchanged, so nothing is written.
    const restarted = new DurableLocalBus(root, quietLogger());
    await expect(restarted.createSubscription(spec)).resolves.toBeUndefined();
    full!();
    await eventually(async () => (delivered.length === 2 ? true : undefined));
    expect(delivered).toEqual([1, 2]);
    await eventually(async () => ((await bus.pending('s')) === 0 ? true : undefined));
    await bus.close();
  });
});

/** Mounting a tmpfs takes root on Linux; elsewhere the injected cases above stand alone. */
const mayMount = process.platform === 'linux' && process.getuid?.() === 0;

describe.skipIf(!mayMount)('disk full on a real 32 MiB tmpfs', () => {
  let tmpfs: string | undefined;
  beforeAll(() => {
    const dir = fs.mkdtempSync('/tmp/flights-tmpfs-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir], { stdio: 'ignore' });
      tmpfs = dir;
    } catch {
      fs.rmdirSync(dir); // not permitted here (a container without CAP_SYS_ADMIN): the test skips itself
    }
  });
  afterAll(async () => {
    await p?.stop();
    p = undefined;
    if (!tmpfs) return;
    execFileSync('umount', ['--lazy', tmpfs]); // detached even if something still holds it open
    fs.rmdirSync(tmpfs);
  });

  it('refuses uploads 507 while full, restarts while full, and loads again once space returns', async (ctx) => {
    if (!tmpfs) return ctx.skip();
    const dataDir = path.join(tmpfs, 'data');
    p = await startTestPipeline({ dataDir });
    expect((await send(p.url, csv)).status).toBe(201);
    const filler = path.join(tmpfs, 'filler');
    const fd = fs.openSync(filler, 'w');
    const block = Buffer.alloc(1 << 16, 1);
    try {
      for (;;) fs.writeSync(fd, block);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const refused = await send(p.url, flightsCsv(3000, 12));
    expect([refused.status, refused.headers['retry-after']]).toEqual([507, '60']);
    await p.stop();
    p = await startTestPipeline({ dataDir });
    expect((await send(p.url, flightsCsv(10, 13))).status).toBe(507);
    fs.rmSync(filler);
    const again = await send(p.url, flightsCsv(3000, 12));
    expect(again.status).toBe(201);
    await eventually(async () => ((await p!.rt.ledger.get(again.body.uploadId))?.status === 'loaded' ? true : undefined));
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
  });
});
