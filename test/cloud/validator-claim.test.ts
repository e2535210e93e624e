/**
 * The signed-upload validator's claim is a lease, and the landed object must
 * be the size the URL was issued for. Runs the validator function itself on
 * the embedded runtime, invoked with the CloudEvent Cloud Functions delivers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/core/config.js';
import { landingName, type SignedUploadRecord } from '../../functions/core/landing.js';
import { newUploadId } from '../../functions/core/ids.js';
import { notificationMessage, toCloudEvent } from '../../functions/core/notification.js';
import { createRuntime, type Runtime } from '../../functions/runtime.js';
import { landingValidator } from '../../functions/uploads/validate.js';
import { quietLogger, tempDir } from '../support/pipeline.js';

const HEADER = 'year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour\n';
let flight = 1000;
/** A valid one-row file, different each time, so no upload is a content duplicate of another. */
const csv = () => `${HEADER}2013,1,1,517,515,2,830,819,11,UA,${flight++},N14228,EWR,IAH,227,1400,5,15,2013-01-01 05:00:00\n`;
const LEASE_MS = 400;
let rt: Runtime;

beforeAll(async () => {
  rt = await createRuntime(loadConfig({ DATA_DIR: await tempDir('flights-validator-'), VALIDATION_LEASE_MS: String(LEASE_MS) }), quietLogger());
});
afterAll(() => rt.close());

/** A signed upload whose file has landed: its record as given, the object, and the event for it. */
async function landed(record: Partial<SignedUploadRecord>, body = csv()) {
  const uploadId = newUploadId();
  const now = new Date().toISOString();
  await rt.signedUploads.create(uploadId, {
    uploadId,
    status: 'awaiting',
    object: landingName(uploadId),
    bytes: Buffer.byteLength(body),
    contentType: 'text/csv',
    uploadUrlExpiresAt: now,
    createdAt: now,
    updatedAt: now,
    ...record,
  });
  const info = await rt.store.write(landingName(uploadId), Buffer.from(body), { contentType: 'text/csv' });
  const { data, attributes } = notificationMessage('OBJECT_FINALIZE', info);
  const event = toCloudEvent({ id: `m-${uploadId}`, data, attributes, publishTime: now, deliveryAttempt: 2 }, 'demo', 'objects', 'validator');
  return { uploadId, event };
}

const validate = (event: unknown) => landingValidator(rt)(event as never);
const claimUntil = (ms: number) => ({ status: 'validating' as const, claim: { token: 'a-run-that-died', expiresAt: new Date(Date.now() + ms).toISOString() } });

describe('the validator claim is a lease', () => {
  it('takes over an upload whose validating run died: its claim expired, the redelivery validates it', async () => {
    const { uploadId, event } = await landed(claimUntil(-1));
    await validate(event);
    const record = await rt.signedUploads.get(uploadId);
    expect(record).toMatchObject({ status: 'accepted' });
    expect(record?.claim).toBeUndefined();
    expect((await rt.ledger.get(uploadId))?.rows).toBe(1);
  });

  it('takes over a `validating` upload claimed before claims expired (no claim recorded)', async () => {
    const { uploadId, event } = await landed({ status: 'validating' });
    await validate(event);
    expect(await rt.signedUploads.get(uploadId)).toMatchObject({ status: 'accepted' });
  });

  it('waits out a live claim that then lapses, and takes over', async () => {
    const { uploadId, event } = await landed(claimUntil(LEASE_MS / 2));
    await validate(event);
    expect(await rt.signedUploads.get(uploadId)).toMatchObject({ status: 'accepted' });
  });

  it('fails the delivery (so Pub/Sub brings it back) while another run keeps its claim alive', async () => {
    const { uploadId, event } = await landed(claimUntil(60_000));
    await expect(validate(event)).rejects.toThrow(/being validated by another run/);
    expect(await rt.signedUploads.get(uploadId)).toMatchObject({ status: 'validating', claim: { token: 'a-run-that-died' } });
    // The landed bytes stay for the run that holds the claim.
    expect(await rt.store.stat(landingName(uploadId))).toBeDefined();
  });

  it('leaves a settled upload alone and drops bytes landed again through its URL', async () => {
    const { uploadId, event } = await landed({ status: 'accepted' });
    await validate(event);
    expect(await rt.signedUploads.get(uploadId)).toMatchObject({ status: 'accepted' });
    expect(await rt.store.stat(landingName(uploadId))).toBeUndefined();
  });
});

describe('the landed object must be the size the URL was issued for', () => {
  it('quarantines a file of another size with a clear reason, and stores nothing', async () => {
    const body = csv();
    const { uploadId, event } = await landed({ bytes: Buffer.byteLength(body) - 10 }, body);
    await validate(event);
    const record = await rt.signedUploads.get(uploadId);
    expect(record).toMatchObject({ status: 'failed', reason: `The upload was not stored: ${Buffer.byteLength(body)} bytes arrived, not the ${Buffer.byteLength(body) - 10} declared.` });
    expect(await rt.ledger.get(uploadId)).toBeUndefined();
    expect(await rt.store.stat(`quarantine/${landingName(uploadId)}.report.json`)).toBeDefined();
    expect(await rt.store.stat(landingName(uploadId))).toBeUndefined();
  });
});
