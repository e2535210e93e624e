import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { SpillingSink, type Spill } from '../../functions/core/spill.js';

const chunks = (n: number, size: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.alloc(size, 65 + (i % 26)));

/** A spill that collects what reaches it, the way a store write would. */
function collectingSpill(): { open: () => Spill; opened: () => number; received: () => Promise<string> } {
  let opened = 0;
  let received: Promise<string> = Promise.resolve('');
  return {
    open() {
      opened++;
      const stream = new PassThrough();
      received = text(stream);
      return { stream, done: received };
    },
    opened: () => opened,
    received: () => received,
  };
}

describe('SpillingSink', () => {
  it('keeps a payload within the limit in memory and opens nothing', async () => {
    const spill = collectingSpill();
    const sink = new SpillingSink(1000, spill.open);
    await pipeline(Readable.from(chunks(3, 300)), sink);
    expect(spill.opened()).toBe(0);
    expect(sink.held?.toString()).toBe(Buffer.concat(chunks(3, 300)).toString());
  });

  it('past the limit, writes everything, in order, through one spill and holds nothing', async () => {
    const spill = collectingSpill();
    const sink = new SpillingSink(1000, spill.open);
    const input = chunks(50, 300);
    await pipeline(Readable.from(input), sink);
    expect(spill.opened()).toBe(1);
    expect(sink.held).toBeUndefined();
    expect(await spill.received()).toBe(Buffer.concat(input).toString());
  });

  it('fails when the spill fails, even one that stops reading', async () => {
    const sink = new SpillingSink(10, () => {
      const stream = new Writable({ highWaterMark: 1, write: () => undefined }); // never drains
      return { stream, done: Promise.reject(new Error('precondition failed')) };
    });
    await expect(pipeline(Readable.from(chunks(20, 100)), sink)).rejects.toThrow('precondition failed');
  });

  it('does not finish before the spill has stored everything', async () => {
    let stored = false;
    const sink = new SpillingSink(10, () => {
      const stream = new PassThrough();
      const done = text(stream).then(() => new Promise((r) => setTimeout(r, 50)).then(() => (stored = true)));
      return { stream, done };
    });
    await pipeline(Readable.from(chunks(5, 100)), sink);
    expect(stored).toBe(true);
  });
});
