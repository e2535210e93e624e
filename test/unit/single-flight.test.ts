import { describe, expect, it } from 'vitest';
import { singleFlight } from '../../functions/loader/flush.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('singleFlight', () => {
  it('gathers the triggers of its window into one flush (group commit)', async () => {
    let flushes = 0;
    const flush = singleFlight(async () => void flushes++, 40);
    const triggers = [flush()];
    await sleep(10);
    triggers.push(flush(), flush());
    await Promise.all(triggers);
    expect(flushes).toBe(1);
  });

  it('runs one more flush for triggers that arrive while one runs, and none after that', async () => {
    let flushes = 0;
    let release!: () => void;
    const flush = singleFlight(async () => {
      flushes++;
      if (flushes === 1) await new Promise<void>((r) => (release = r));
    });
    const first = flush();
    await sleep(5);
    const during = [flush(), flush(), flush()];
    release();
    await Promise.all([first, ...during]);
    expect(flushes).toBe(2);
    await flush();
    expect(flushes).toBe(3);
  });

  it('settles each trigger with the first flush that starts after it, though later triggers keep flushing', async () => {
    const releases: (() => void)[] = [];
    const flush = singleFlight(() => new Promise<void>((r) => releases.push(r)));
    const settled: string[] = [];
    const trigger = (name: string) => void flush().then(() => settled.push(name));
    // A flush's end settles its triggers in microtasks, all run before a timer's turn.
    const finishFlush = async () => {
      releases.shift()!();
      await sleep(5);
    };
    trigger('first');
    trigger('second'); // during the first flush: runs the next one
    await finishFlush();
    expect(settled).toEqual(['first']);
    trigger('third'); // during the second flush, as a steady stream of uploads does
    await finishFlush();
    expect(settled).toEqual(['first', 'second']);
    await finishFlush();
    expect(settled).toEqual(['first', 'second', 'third']);
    expect(releases).toEqual([]);
  });
});
