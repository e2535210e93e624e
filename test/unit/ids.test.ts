import { describe, expect, it } from 'vitest';
import { newUploadId, randomHex, UPLOAD_ID } from '../../functions/core/ids.js';

describe('ids', () => {
  it('upload ids made in one millisecond stay distinct and well-formed across many refills of the random pool', () => {
    // 5,000 ids draw 25,000 bytes: the 4 KiB pool is refilled several times.
    const ids = Array.from({ length: 5000 }, () => newUploadId(0));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UPLOAD_ID);
  });

  it('hands out more than a pool holds in one draw', () => {
    expect(randomHex(5000)).toMatch(/^[0-9a-f]{10000}$/);
  });
});
