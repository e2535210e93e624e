/**
 * The validator's claim on a signed upload is a lease: the run that moves the
 * record to `validating` holds it until `claim.expiresAt`, renews it while it
 * works, and settles it with a compare on its token. A run that was killed
 * (the function's timeout, an instance stopped) stops renewing; once its claim
 * has expired, the redelivered notification takes the upload over instead of
 * leaving it `validating` forever.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SignedUploadRecord } from '../core/landing.js';
import type { JsonRecords } from '../core/records.js';

/** Awaiting its file, or validating under a claim that lapsed (or one taken before claims expired). */
export function claimable(record: SignedUploadRecord, now: number): boolean {
  if (record.status === 'awaiting') return true;
  return record.status === 'validating' && (!record.claim || Date.parse(record.claim.expiresAt) <= now);
}

export class ValidationLease {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly records: JsonRecords<SignedUploadRecord>,
    readonly uploadId: string,
    readonly token: string,
    private readonly ttlMs: number,
  ) {}

  /**
   * Claims the upload if it is claimable. Otherwise, while another run holds a
   * live claim, waits (up to one TTL) for that run to settle the upload or for
   * its claim to lapse, and tries again. Answers the record as it stands and
   * the lease if this run now holds it.
   */
  static async claim(records: JsonRecords<SignedUploadRecord>, uploadId: string, ttlMs: number): Promise<{ record?: SignedUploadRecord; lease?: ValidationLease }> {
    const token = randomUUID();
    const deadline = Date.now() + ttlMs;
    for (;;) {
      let won = false;
      const record = await records.update(uploadId, (r) => {
        won = claimable(r, Date.now());
        return won ? { status: 'validating', claim: { token, expiresAt: new Date(Date.now() + ttlMs).toISOString() } } : {};
      });
      if (won && record) return { record, lease: new ValidationLease(records, uploadId, token, ttlMs).keepAlive() };
      if (record?.status !== 'validating' || Date.now() >= deadline) return record ? { record } : {};
      const expires = record.claim ? Date.parse(record.claim.expiresAt) : 0;
      // Until that claim lapses (or the deadline), looking in every tenth of a TTL in case its run settles first.
      await sleep(Math.min(ttlMs / 10, Math.max(1, Math.min(expires + 1, deadline) - Date.now())));
    }
  }

  /** Writes `change` only if this run still holds the claim, and ends the claim; false if it was taken over. */
  async settle(change: Partial<SignedUploadRecord>): Promise<boolean> {
    this.stop();
    await this.renewing;
    let mine = false;
    await this.records.update(this.uploadId, (r) => ((mine = r.claim?.token === this.token) ? { ...change, claim: undefined } : {}));
    return mine;
  }

  private keepAlive(): this {
    this.timer = setInterval(() => {
      this.renewing = this.records
        .update(this.uploadId, (r) => (r.claim?.token === this.token ? { claim: { token: this.token, expiresAt: new Date(Date.now() + this.ttlMs).toISOString() } } : {}))
        .catch(() => undefined);
    }, Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    return this;
  }

  private stop(): void {
    clearInterval(this.timer);
  }
}
