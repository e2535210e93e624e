/**
 * DuckDB for several processes sharing one database file, as under
 * `npm run start:emulators`, where every function runs in a
 * functions-framework process of its own and both the loader and the query
 * function need the warehouse.
 *
 * DuckDB lets one process open a file read-write, and holds that lock for as
 * long as the database stays open, so a loader keeping it open would lock the
 * query function out for good. Here each operation opens the file, works and
 * closes it again, and an open that finds the file locked waits and retries:
 * DuckDB's own file lock is the cross-process mutex, so the file is never
 * open in two processes at once and a crashed process releases it with its
 * death. Opening costs tens of milliseconds, which is why the in-process
 * DuckDbWarehouse (`npm start`, tests, one process) keeps its database open
 * and is not routed through here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WarehouseUnavailableError, type ExportOutcome, type ExportTarget, type LoadItem, type LoadOutcome, type QueryResult, type Warehouse } from '../../core/ports.js';
import type { ExportSpec, QuerySpec } from '../../core/query-spec.js';
import { DuckDbWarehouse } from './warehouse.js';

/** DuckDB's message when another process holds the file. */
const LOCKED = /Could not set lock on file/;

export class SharedDuckDbWarehouse implements Warehouse {
  /** One open at a time in this process too: the lock only keeps other processes out. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly file: string,
    /** DuckDB's threads; 0 keeps its default. */
    private readonly threads = 0,
    /** How long an operation waits for other processes before failing (a load may hold the file for seconds). */
    private readonly lockTimeoutMs = 60_000,
  ) {}

  /** Creates the tables now, so a misconfigured path fails at start rather than on the first request. */
  init(): Promise<void> {
    return this.withDatabase(async () => undefined);
  }

  load(items: LoadItem[]): Promise<LoadOutcome[]> {
    return this.withDatabase((db) => db.load(items));
  }

  query(spec: QuerySpec): Promise<QueryResult> {
    return this.withDatabase((db) => db.query(spec));
  }

  count(spec: QuerySpec): Promise<number> {
    return this.withDatabase((db) => db.count(spec));
  }

  /** Holds the file for the whole COPY: other processes wait, as they do for a load. */
  exportCsv(spec: ExportSpec, columns: readonly string[], target: ExportTarget): Promise<ExportOutcome> {
    return this.withDatabase((db) => db.exportCsv(spec, columns, target));
  }

  ping(): Promise<void> {
    return this.withDatabase((db) => db.ping());
  }

  /** Nothing stays open between operations; wait for the one in flight. */
  async close(): Promise<void> {
    await this.queue;
  }

  private withDatabase<T>(work: (db: DuckDbWarehouse) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const db = await this.open();
      try {
        return await work(db);
      } finally {
        await db.close();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async open(): Promise<DuckDbWarehouse> {
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 200)) {
      // One read connection: the database lives for a single operation.
      const db = new DuckDbWarehouse(this.file, 1, this.threads);
      try {
        await db.init();
        return db;
      } catch (e) {
        await db.close();
        if (!LOCKED.test((e as Error).message)) throw e;
        // Another process's trouble, no file's: the loader holds its files for the next flush instead of charging them.
        if (Date.now() > deadline) throw new WarehouseUnavailableError(`another process has held the warehouse file for over ${this.lockTimeoutMs} ms: ${(e as Error).message}`, { cause: e });
        // Jitter, so processes waiting for the same release do not collide again in step.
        await sleep(delayMs * (0.5 + Math.random()));
      }
    }
  }
}
