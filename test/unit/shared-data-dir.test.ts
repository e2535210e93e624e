/**
 * SHARED_DATA_DIR: several processes on one data directory. Each case runs
 * the other side in a real child process, since both DuckDB's file lock and
 * the bucket's lock files only exclude other processes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SharedDuckDbWarehouse } from '../../functions/adapters/duckdb/shared.js';
import { withFileLock } from '../../functions/adapters/local/file-lock.js';
import { FsObjectStore } from '../../functions/adapters/local/fs-store.js';
import { CANONICAL_HEADER } from '../../functions/core/schema.js';
import { uploadLedger } from '../../functions/core/uploads.js';
import { flushPending } from '../../functions/loader/flush.js';
import { PendingFiles } from '../../functions/loader/pending.js';
import { parseQuery } from '../../functions/query/grammar.js';
import { quietLogger, tempDir } from '../support/pipeline.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module snippet (TypeScript imports allowed) in a child process; resolves with its stdout. `onStdin` gets its stdin to write to. */
function runChild(code: string, onLine?: (line: string) => void, onStdin?: (stdin: Writable) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    if (onStdin) onStdin(child.stdin);
    else child.stdin.end();
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of chunk.toString().split('\n')) if (line) onLine?.(line);
    });
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited with ${code}: ${out}`))));
  });
}

describe('SharedDuckDbWarehouse', () => {
  it('waits while another process holds the database, and holds nothing between operations', async () => {
    const file = path.join(await tempDir(), 'warehouse.duckdb');
    const warehouse = new SharedDuckDbWarehouse(file);
    await warehouse.init();

    // Another process opens the file (possible only because the warehouse let go of it), holds it, and says when it lets go.
    let released = false;
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    const holder = runChild(
      `import { DuckDBInstance } from '@duckdb/node-api';
       const db = await DuckDBInstance.create(${JSON.stringify(file)});
       console.log('open');
       await new Promise((r) => setTimeout(r, 300));
       console.log('closing');
       db.closeSync();`,
      (line) => {
        if (line === 'open') opened();
        if (line === 'closing') released = true;
      },
    );
    await isOpen;
    const count = await warehouse.count(parseQuery(new URLSearchParams(), { cursorSecret: 'test' }).spec);
    expect(released).toBe(true);
    expect(count).toBe(0);
    await holder;
    await warehouse.close();
  });
});

describe('a flush while another process holds the database past the lock timeout', () => {
  it('charges no file: the files stay pending, uncharged, and load once the database is free', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'warehouse.duckdb');
    const warehouse = new SharedDuckDbWarehouse(file, 0, 100);
    await warehouse.init();
    const store = new FsObjectStore(path.join(dir, 'buckets'), 'b');
    const pending = new PendingFiles(store);
    for (const name of ['incoming/a.csv', 'incoming/b.csv']) {
      const info = await store.write(name, Buffer.from(`${CANONICAL_HEADER.join(',')}\n`), { contentType: 'text/csv' });
      await pending.add({ object: info.name, generation: info.generation, bytes: info.size });
    }
    const flush = () =>
      flushPending({ store, bus: { publish: async () => 'dead-lettered' } as never, warehouse, ledger: uploadLedger(store), log: quietLogger(), settings: { spacingMs: 0, leaseMs: 10_000, maxBatchBytes: Infinity, maxFailures: 1, deadLetterTopic: 'dead' } });
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    let release!: () => void;
    const holder = runChild(
      `import { DuckDBInstance } from '@duckdb/node-api';
       const db = await DuckDBInstance.create(${JSON.stringify(file)});
       console.log('open');
       await new Promise((r) => process.stdin.once('data', r));
       db.closeSync();`,
      (line) => line === 'open' && opened(),
      (stdin) => (release = () => stdin.end('go\n')),
    );
    await isOpen;
    // Quarantining (maxFailures 1) both acknowledged files for another process's long hold lost their rows to their users.
    expect(await flush()).toMatchObject({ ran: true, loaded: 0, quarantined: 0, jobs: 1 });
    expect((await pending.list(10)).map((f) => f.failures)).toEqual([0, 0]);
    release();
    await holder;
    expect(await flush()).toMatchObject({ loaded: 2, quarantined: 0 });
    await warehouse.close();
  });
});

describe('FsObjectStore across processes', () => {
  it('lets exactly one of several processes create an object with ifGenerationMatch=0', async () => {
    const root = await tempDir();
    const attempt = `
      const { FsObjectStore } = await import('./functions/adapters/local/fs-store.ts');
      const { Readable } = await import('node:stream');
      const store = new FsObjectStore(${JSON.stringify(root)}, 'b', { crossProcess: true });
      const won = await store.write('claim', Readable.from([String(process.pid)]), { ifGenerationMatch: '0' }).then(() => true, () => false);
      console.log(won ? 'won' : 'lost');`;
    const results = await Promise.all(Array.from({ length: 6 }, () => runChild(attempt)));
    expect(results.filter((r) => r.trim() === 'won')).toHaveLength(1);
  });

  it('takes over a lock whose holder was killed while holding it', async () => {
    const lock = path.join(await tempDir(), 'locks', 'x.lock');
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `
        const { withFileLock } = await import('./functions/adapters/local/file-lock.ts');
        await withFileLock(${JSON.stringify(lock)}, () => { console.log('locked'); return new Promise(() => {}); });`],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout.on('data', (c: Buffer) => c.toString().includes('locked') && resolve()));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    // Its pid, a random tag, and the boot id and start time that tell it from a later process given the same pid.
    expect(await fs.readFile(lock, 'utf8')).toMatch(new RegExp(`^${holder.pid}-[0-9a-f]{12}-[0-9a-f]{32}-\\d+$`));

    expect(await withFileLock(lock, async () => 'taken over')).toBe('taken over');
    // Nor is the claim file the killed holder took the lock with left behind.
    expect(await fs.readdir(path.dirname(lock))).toEqual([]);
  });
});
