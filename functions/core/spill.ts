/**
 * A sink that keeps what it is given in memory up to `limit` bytes and past
 * that opens a stream (`spill`) and writes everything through it instead: a
 * small payload costs one write at the end, a large one streams with bounded
 * memory. The local store spills to a temp file, ingest to a staging object.
 */
import { Writable } from 'node:stream';

export interface Spill {
  stream: Writable;
  /** Settles once what was written through `stream` is stored, or has failed. */
  done: Promise<unknown>;
}

export class SpillingSink extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  private spill?: Spill;

  constructor(
    private readonly limit: number,
    private readonly open: () => Spill,
  ) {
    super();
  }

  /** Once finished: the bytes, if they stayed in memory; undefined if they were spilled. */
  get held(): Buffer | undefined {
    return this.spill ? undefined : Buffer.concat(this.chunks);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (!this.spill) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size <= this.limit) return done();
      const spill = (this.spill = this.open());
      spill.stream.on('error', (e) => this.destroy(e));
      // A store that refuses early never drains: its failure must end this stream too.
      spill.done.catch((e: Error) => this.destroy(e));
      chunk = Buffer.concat(this.chunks);
      this.chunks = [];
    }
    if (this.spill.stream.write(chunk)) done();
    else this.spill.stream.once('drain', () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    if (!this.spill) return done();
    this.spill.stream.end();
    this.spill.done.then(() => done(), done);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!this.spill) return done(error);
    this.spill.stream.destroy(error ?? undefined);
    this.spill.done.then(
      () => done(error),
      () => done(error),
    );
  }
}
