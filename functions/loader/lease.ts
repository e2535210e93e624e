/**
 * The flush lease: one flush at a time across every loader instance, for as
 * long as it runs. A small JSON object in the bucket says who holds it, when
 * that flush started (the spacing counts from there) and until when it is
 * held. Every change is a compare-and-swap on the object's generation, so of
 * several racing instances exactly one takes it. The holder renews it while
 * it works and releases it when done; anyone else takes it over only after it
 * expired (a holder that crashed, or a function instance that was stopped).
 */
import { randomUUID } from 'node:crypto';
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from '../core/ports.js';

export const FLUSH_LEASE = 'loader/last-flush.json';

interface LeaseRecord {
  owner: string;
  /** When the holder's flush started (ms since the epoch). */
  startedAt: number;
  /** Until when it is held; a released lease expires when released. */
  expiresAt: number;
}

export interface LeaseTimes {
  /** Minimum time between two flush starts. */
  spacingMs: number;
  /** How long a take or a renewal holds the lease: at least the longest step between two renewals. */
  ttlMs: number;
}

const lost = (e: unknown): boolean => e instanceof PreconditionFailedError || e instanceof ObjectNotFoundError;

export class HeldLease {
  private timer: NodeJS.Timeout | undefined;
  private lostIt = false;
  private renewal: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: ObjectStore,
    private readonly name: string,
    private record: LeaseRecord,
    private generation: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** False once a renewal found the lease taken over: the holder must not start another warehouse job. */
  get held(): boolean {
    return !this.lostIt;
  }

  /**
   * Extends the lease by its TTL from now; false if it was lost meanwhile.
   * Renewals queue behind each other: two at once would race on one generation and the loser would read as a takeover.
   */
  async renew(): Promise<boolean> {
    this.renewal = this.renewal.catch(() => undefined).then(() => (this.lostIt ? undefined : this.write({ ...this.record, expiresAt: this.now() + this.ttlMs })));
    await this.renewal;
    return !this.lostIt;
  }

  /** Renews every third of the TTL until released, so a long job or a long settle keeps it. */
  keepAlive(): this {
    this.timer = setInterval(() => void this.renew().catch(() => undefined), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    return this;
  }

  /** Frees the lease at once (the spacing still counts from this flush's start). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.renewal.catch(() => undefined);
    if (!this.lostIt) await this.write({ ...this.record, expiresAt: this.now() });
  }

  private async write(record: LeaseRecord): Promise<void> {
    try {
      const info = await this.store.write(this.name, Buffer.from(JSON.stringify(record)), { contentType: 'application/json', ifGenerationMatch: this.generation });
      this.record = record;
      this.generation = info.generation;
    } catch (e) {
      if (!lost(e)) throw e;
      this.lostIt = true;
    }
  }
}

/** The lease as stored; the earlier `{at}` layout (a spacing marker, never held) reads as released at `at`. */
function parse(body: string): LeaseRecord {
  const r = JSON.parse(body) as Partial<LeaseRecord> & { at?: number };
  return { owner: r.owner ?? '', startedAt: r.startedAt ?? r.at ?? 0, expiresAt: r.expiresAt ?? 0 };
}

/**
 * A record stamped further ahead of this clock than any holder writes (its start at most its now,
 * its expiry at most its now plus the TTL), by more than a TTL of skew: this clock was set back
 * since (a laptop's clock corrected after a sleep, or by hand). Waiting for the clock to reach the
 * stamp would stop every flush for as long as the jump; the lease counts as expired instead.
 */
const setBack = (last: LeaseRecord, at: number, { ttlMs }: LeaseTimes): boolean => last.startedAt > at + ttlMs || last.expiresAt > at + 2 * ttlMs;

/**
 * Takes the lease if nobody holds it (released, or expired) and the last
 * flush started at least `spacingMs` ago; undefined otherwise.
 */
export async function acquireFlushLease(store: ObjectStore, times: LeaseTimes, now: () => number = Date.now, name = FLUSH_LEASE): Promise<HeldLease | undefined> {
  try {
    const found = await store.readSmall(name);
    const current = found?.info;
    if (found) {
      const last = parse(found.bytes.toString('utf8'));
      const at = now();
      if (!setBack(last, at, times) && (last.expiresAt > at || at - last.startedAt < times.spacingMs)) return undefined;
    }
    const record: LeaseRecord = { owner: randomUUID(), startedAt: now(), expiresAt: now() + times.ttlMs };
    const info = await store.write(name, Buffer.from(JSON.stringify(record)), { contentType: 'application/json', ifGenerationMatch: current?.generation ?? '0' });
    return new HeldLease(store, name, record, info.generation, times.ttlMs, now);
  } catch (e) {
    // Another instance moved the lease between our read and our write: it flushes, we don't.
    if (lost(e)) return undefined;
    throw e;
  }
}
