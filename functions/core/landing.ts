/**
 * Uploads that go straight to the bucket. POST /uploads hands out a signed
 * resumable URL for `landing/<id>.csv` (the client's raw bytes, kept apart
 * from `staging/`, which only ever holds canonical CSVs written by ingest)
 * and records the upload here: `awaiting → validating → accepted | duplicate | failed`.
 * Once accepted the upload has its ordinary record (core/uploads.ts) and
 * follows the inline path from `stored` on.
 */
import type { CsvFault } from './problem.js';
import type { ObjectStore } from './ports.js';
import { JsonRecords } from './records.js';

export const LANDING_PREFIX = 'landing/';
export const landingName = (uploadId: string): string => `${LANDING_PREFIX}${uploadId}.csv`;
const LANDING_NAME = /^landing\/([0-9a-z]{9}[0-9a-f]{10})\.csv$/;
export const uploadIdOfLanding = (name: string): string | undefined => LANDING_NAME.exec(name)?.[1];

/** `duplicate`: the same content was stored before (ingest's content idempotency); `duplicateOf` names that upload. */
export type SignedUploadState = 'awaiting' | 'validating' | 'accepted' | 'duplicate' | 'failed';

/** Which validator run holds a `validating` upload, and until when (uploads/claim.ts). */
export interface ValidationClaim {
  token: string;
  expiresAt: string;
}

export interface SignedUploadRecord {
  uploadId: string;
  status: SignedUploadState;
  object: string;
  fileName?: string;
  /** Who asked for the URL, as the gateway vouched for it (ingest/identity.ts); the stored file keeps it. */
  uploader?: string;
  bytes: number;
  contentType: string;
  /** What the client says the file's SHA-256 is; checked against the bytes that arrive. */
  sha256?: string;
  /** Until when the upload URL can start a session. */
  uploadUrlExpiresAt: string;
  createdAt: string;
  updatedAt: string;
  /** When failed: why, and for an invalid CSV the same fields a 422 from POST /upload carries. */
  reason?: string;
  duplicateOf?: string;
  /** While `validating`: the run's lease; a lapsed one lets a redelivery take over. */
  claim?: ValidationClaim;
  errorCount?: number;
  errors?: CsvFault[];
}

export const SIGNED_UPLOADS_PREFIX = 'signed-uploads/';

export const signedUploadRecords = (store: ObjectStore): JsonRecords<SignedUploadRecord> => new JsonRecords<SignedUploadRecord>(store, SIGNED_UPLOADS_PREFIX);
