import { randomBytes } from 'node:crypto';

/** Upload ids sort by creation time (base-36 milliseconds), then 10 random hex digits. */
export function newUploadId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
}

export const UPLOAD_ID = /^[0-9a-z]{9}[0-9a-f]{10}$/;
