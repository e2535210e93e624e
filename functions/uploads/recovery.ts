/**
 * Signed uploads a stopped process left half-way, put right before the next
 * one serves:
 * - a `landing/` object is the client's whole file, finalized; the
 *   validator deletes it once it is settled. One still there was never
 *   validated to the end: its notification is published again (the bucket's
 *   own one may have been lost between the finalize and the publish, as for
 *   `incoming/`). A redelivery of the original one is harmless: the
 *   validator's claim lets one run validate, the other finds it settled.
 * - a `validating` claim held by the stopped process (`ownersGone`: no other
 *   process shares the data directory) is handed back at once, so the
 *   redelivered notification validates it now rather than after the lease.
 *   Where owners may be alive (a shared data directory, the cloud's scheduled
 *   reconcile), a claim still within its lease is a run at work, renewing it:
 *   that file is left to it, and announced again once the claim has lapsed.
 */
import { LANDING_PREFIX, uploadIdOfLanding } from '../core/landing.js';
import { notificationMessage } from '../core/notification.js';
import type { Runtime } from '../runtime.js';
import { claimable } from './claim.js';

export interface LandedRecovery {
  /** Landed files announced to the validator again. */
  announced: string[];
  /** Validation claims handed back. */
  released: string[];
}

export async function recoverLanded(rt: Runtime, before: Date, ownersGone: boolean): Promise<LandedRecovery> {
  const report: LandedRecovery = { announced: [], released: [] };
  for await (const info of rt.store.list(LANDING_PREFIX)) {
    const uploadId = uploadIdOfLanding(info.name);
    if (!uploadId || Date.parse(info.updated) >= before.getTime()) continue;
    if (ownersGone) {
      let released = false;
      await rt.signedUploads.update(uploadId, (r) => ((released = r.status === 'validating') ? { status: 'awaiting', claim: undefined } : {}));
      if (released) report.released.push(uploadId);
    } else {
      const record = await rt.signedUploads.get(uploadId);
      if (record?.status === 'validating' && !claimable(record, Date.now())) continue;
    }
    const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
    await rt.bus.publish(rt.config.notificationTopic, data, attributes);
    report.announced.push(info.name);
  }
  return report;
}
