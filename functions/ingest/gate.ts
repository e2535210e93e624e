/**
 * Admits a bounded number of uploads at once. Each one holds a parser, a
 * store write and buffers; refusing the next with 429 keeps the process's
 * memory and latency bounded instead of slowing every upload down.
 */
export class ConcurrencyGate {
  private inFlight = 0;
  constructor(private readonly capacity: number) {}

  /** A release function, or undefined when full. */
  tryEnter(): (() => void) | undefined {
    if (this.inFlight >= this.capacity) return undefined;
    this.inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
    };
  }
}
