/**
 * API Gateway's quota, per consumer: a limit counts calls in fixed windows
 * (`1/min/{project}`: the calendar minute); past it a call is refused until
 * the window turns over. Locally the consumer is the caller (key name or JWT
 * subject) rather than the key's Google Cloud project.
 */
import type { Quota } from './security.js';

export interface QuotaVerdict {
  allowed: boolean;
  /** Whole seconds until the window turns over (for Retry-After); 0 when allowed. */
  retryAfterSeconds: number;
  limit?: Quota;
}

export class QuotaCounter {
  /** `consumer\0limit` → calls in the window that started at `windowStart`. */
  private readonly used = new Map<string, { windowStart: number; calls: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Spends each quota's cost if every quota has room; spends nothing otherwise. */
  spend(consumer: string, quotas: readonly Quota[]): QuotaVerdict {
    const at = this.now();
    const pending: { key: string; windowStart: number; calls: number }[] = [];
    for (const quota of quotas) {
      const windowMs = quota.windowSeconds * 1000;
      const windowStart = Math.floor(at / windowMs) * windowMs;
      const key = `${consumer}\0${quota.limit}`;
      const current = this.used.get(key);
      const calls = (current?.windowStart === windowStart ? current.calls : 0) + quota.cost;
      if (calls > quota.perWindow) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((windowStart + windowMs - at) / 1000)), limit: quota };
      pending.push({ key, windowStart, calls });
    }
    for (const { key, windowStart, calls } of pending) this.used.set(key, { windowStart, calls });
    this.prune(at);
    return { allowed: true, retryAfterSeconds: 0 };
  }

  /** Windows that have turned over hold nothing worth keeping. */
  private prune(at: number): void {
    if (this.used.size < 10_000) return;
    for (const [key, entry] of this.used) if (at - entry.windowStart > 3_600_000) this.used.delete(key);
  }
}
