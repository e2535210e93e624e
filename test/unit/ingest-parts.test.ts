/** The small pure pieces of ingest: header parsing, identity, tracing, the gate and the idempotency index. */
import { describe, expect, it, onTestFinished } from 'vitest';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { processStart } from '../../functions/adapters/local/process-start.js';
import { traceFields } from '../../functions/core/logger.js';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { holderIsGone, IdempotencyIndex, PROCESS_INSTANCE } from '../../functions/core/uploads.js';
import { requestIsGzip, isGzipPart } from '../../functions/ingest/decode.js';
import { ConcurrencyGate } from '../../functions/ingest/gate.js';
import { uploaderIdentity } from '../../functions/ingest/identity.js';
import { declaredLengthProblem } from '../../functions/ingest/limits.js';
import { sanitizeFileName } from '../../functions/ingest/store-upload.js';
import { tempDir } from '../support/pipeline.js';

describe('ingest parts', () => {
  it('keeps only a harmless base name of a client file name', () => {
    expect(sanitizeFileName('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFileName('C:\\Users\\a\\f.csv')).toBe('f.csv');
    expect(sanitizeFileName('a\u0000b\u001b[31m.csv')).toBe('ab[31m.csv');
    expect(sanitizeFileName('..')).toBeUndefined();
    expect(sanitizeFileName('x'.repeat(500))).toHaveLength(200);
  });

  it('takes the uploader from API Gateway, then IAP, and ignores what does not decode', () => {
    const info = (claims: object) => Buffer.from(JSON.stringify(claims)).toString('base64url');
    expect(uploaderIdentity({ 'x-apigateway-api-userinfo': info({ sub: 's-1' }) })).toBe('s-1');
    expect(uploaderIdentity({ 'x-apigateway-api-userinfo': 'not json', 'x-goog-authenticated-user-email': 'accounts.google.com:a@b.c' })).toBe('a@b.c');
    expect(uploaderIdentity({})).toBeUndefined();
  });

  it('reads the trace from X-Cloud-Trace-Context first, then traceparent', () => {
    const t = 'ab'.repeat(16);
    expect(traceFields({ 'x-cloud-trace-context': `${t}/42;o=0`, traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` }, 'p')).toEqual({
      'logging.googleapis.com/trace': `projects/p/traces/${t}`,
      'logging.googleapis.com/spanId': '42',
      'logging.googleapis.com/trace_sampled': false,
    });
    expect(traceFields({ traceparent: `00-${t}-${'d'.repeat(16)}-01` }, 'p')['logging.googleapis.com/trace_sampled']).toBe(true);
    expect(traceFields({ traceparent: 'garbage' }, 'p')).toEqual({});
  });

  it('accepts gzip and identity codings only; recognizes gzip parts by type or name', () => {
    expect(requestIsGzip({})).toBe(false);
    expect(requestIsGzip({ 'content-encoding': 'identity' })).toBe(false);
    expect(requestIsGzip({ 'content-encoding': 'GZIP' })).toBe(true);
    expect(() => requestIsGzip({ 'content-encoding': 'gzip, br' })).toThrow(/Only gzip/);
    expect(isGzipPart('application/octet-stream', 'f.CSV.GZ')).toBe(true);
    expect(isGzipPart('application/x-gzip', undefined)).toBe(true);
    expect(isGzipPart('text/csv', 'f.csv')).toBe(false);
  });

  it('refuses a declared length over the limit, and not one within it', () => {
    expect(declaredLengthProblem({ 'content-length': '11' }, 10, 'local')?.status).toBe(413);
    expect(declaredLengthProblem({ 'content-length': '10' }, 10, 'local')).toBeUndefined();
    expect(declaredLengthProblem({}, 10, 'local')).toBeUndefined();
  });

  it('admits up to its capacity, and again after a release (released once only)', () => {
    const gate = new ConcurrencyGate(2);
    const a = gate.tryEnter()!;
    expect(gate.tryEnter()).toBeDefined();
    expect(gate.tryEnter()).toBeUndefined();
    a();
    a();
    expect(gate.tryEnter()).toBeDefined();
    expect(gate.tryEnter()).toBeUndefined();
  });

  it('lets exactly one of many racing claims win, replays its result, and takes over an expired entry', async () => {
    const store = new FsObjectStore(await tempDir(), 'b');
    const index = new IdempotencyIndex<string>(store, 60_000, 5_000);
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => index.claim('sha256', 'f00d', `owner-${i}`)));
    const winners = claims.filter((c) => c.won);
    expect(winners).toHaveLength(1);
    await index.complete('sha256', 'f00d', winners[0] as Extract<(typeof claims)[number], { won: true }>, 'result');
    expect(await index.claim('sha256', 'f00d', 'late')).toEqual({ won: false, entry: expect.objectContaining({ result: 'result' }) });
    const later = new Date(Date.now() + 61_000);
    expect((await index.claim('sha256', 'f00d', 'next', later)).won).toBe(true);
  });

  it('claims something new with one store request, and a released entry can be claimed again', async () => {
    const store = new FsObjectStore(await tempDir(), 'b');
    const calls: string[] = [];
    const counted = new Proxy(store, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (...args: unknown[]) => (calls.push(String(prop)), value.apply(target, args)) : value;
      },
    });
    const index = new IdempotencyIndex<string>(counted, 60_000, 5_000);
    const first = await index.claim('key', 'k', 'a');
    expect(calls).toEqual(['write']);
    if (!first.won) throw new Error('the first claim must win');
    await index.release('key', 'k', first);
    expect((await index.claim('key', 'k', 'b')).won).toBe(true);
    expect(await index.claim('key', 'k', 'c')).toEqual({ won: false, entry: expect.objectContaining({ owner: 'b' }) });
  });

  it('an unfinished claim is a lease: a retry after it expires takes over, a finished entry holds for the window', async () => {
    const dir = await tempDir();
    onTestFinished(() => fs.rm(dir, { recursive: true, force: true }));
    const store = new FsObjectStore(dir, 'b');
    const index = new IdempotencyIndex<string>(store, 60_000, 5_000);
    const t0 = Date.now();
    const crashed = await index.claim('key', 'k', 'crashed', new Date(t0));
    expect(crashed.won).toBe(true);
    // The owner never completes nor releases (it was killed): within the lease the retry is still refused...
    expect((await index.claim('key', 'k', 'retry', new Date(t0 + 4_000))).won).toBe(false);
    // ...after it, the retry owns the key and its result is what later repeats get.
    const retry = await index.claim('key', 'k', 'retry', new Date(t0 + 5_001));
    if (!retry.won) throw new Error('the retry after the lease must win');
    await index.complete('key', 'k', retry, 'stored');
    expect(await index.claim('key', 'k', 'late', new Date(t0 + 30_000))).toEqual({ won: false, entry: expect.objectContaining({ owner: 'retry', result: 'stored' }) });
  });

  it('tells a claim of a dead process on this host from one of a live process', async () => {
    const [host, pid] = PROCESS_INSTANCE.split('/');
    expect(holderIsGone(PROCESS_INSTANCE)).toBe(false);
    // This pid under another tag: a predecessor that had this pid (a container restarted as pid 1).
    expect(holderIsGone(`${host}/${pid}/other`)).toBe(true);
    expect(holderIsGone(`${host}/${process.ppid}/x`)).toBe(false);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    expect(holderIsGone(`${host}/${child.stdout.toString()}/x`)).toBe(true);
    expect(holderIsGone(`another-host/1/x`)).toBe(false);
    expect(holderIsGone(undefined)).toBe(true);
  });

  it('tells a claim of a live process from one whose dead holder\'s pid the kernel gave to another process', async () => {
    const [host] = PROCESS_INSTANCE.split('/');
    expect(PROCESS_INSTANCE).toMatch(new RegExp(`^[^/]+/${process.pid}/[0-9a-f]{8}/[0-9a-f]{32}-\\d+$`));
    const live = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000)'], { stdio: 'ignore' });
    onTestFinished(async () => {
      live.kill('SIGKILL');
      if (live.exitCode === null && live.signalCode === null) await once(live, 'exit');
    });
    await once(live, 'spawn');
    const pid = live.pid!;
    const start = processStart(pid)!;
    const [boot, ticks] = start.split('-');
    expect(holderIsGone(`${host}/${pid}/x/${start}`)).toBe(false);
    // Its pid, recorded by a process that started earlier in this boot, or in another boot: that one is gone.
    expect(holderIsGone(`${host}/${pid}/x/${boot}-${Number(ticks) - 1}`)).toBe(true);
    expect(holderIsGone(`${host}/${pid}/x/${'0'.repeat(32)}-${ticks}`)).toBe(true);
    // A claim written before starts were recorded (or without /proc) is judged by its pid alone, as before.
    expect(holderIsGone(`${host}/${pid}/x`)).toBe(false);
  });
});
