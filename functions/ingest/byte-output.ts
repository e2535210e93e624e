/**
 * The canonical CSV as it is written: bytes gathered into chunks of about
 * `chunkBytes` and handed on whole, so that a row costs a copy, not a string.
 * Each chunk handed on has a memory of its own (never Buffer's shared pool), so
 * a worker thread can transfer it rather than copy it.
 */
const COMMA = 44;
const LF = 10;
/** `,` + the digits of a line number (at most 16 for any number a double holds exactly) + LF. */
const LINE_END_BYTES = 18;
/** Longer than a flights row (~115 bytes): copied by Buffer#copy. */
const SHORT_COPY_BYTES = 256;

export class ByteOutput {
  private buffer: Buffer;
  private used = 0;

  constructor(
    private readonly chunkBytes: number,
    private readonly push: (chunk: Buffer) => void,
  ) {
    this.buffer = Buffer.allocUnsafeSlow(chunkBytes);
  }

  /** Room for `bytes` more plus a line end: the chunk so far is handed on when it has not. */
  reserve(bytes: number): void {
    const needed = bytes + LINE_END_BYTES;
    if (this.used + needed <= this.buffer.length) return;
    this.flush();
    if (needed > this.buffer.length) this.buffer = Buffer.allocUnsafeSlow(needed);
  }

  /**
   * `source[start, end)`, in room reserved. A row or a field is short: a loop
   * copies it in less time than Buffer#copy takes to make the view it copies from.
   */
  copy(source: Buffer, start: number, end: number): void {
    if (end - start > SHORT_COPY_BYTES) {
      this.used += source.copy(this.buffer, this.used, start, end);
      return;
    }
    const b = this.buffer;
    let at = this.used;
    for (let i = start; i < end; i++) b[at++] = source[i]!;
    this.used = at;
  }

  /** A comma, in room reserved. */
  comma(): void {
    this.buffer[this.used++] = COMMA;
  }

  /** `,<line>\n`, the end of every canonical row, in room reserved. */
  lineEnd(line: number): void {
    const b = this.buffer;
    b[this.used++] = COMMA;
    let digits = 1;
    for (let rest = line; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = (this.used += digits);
    for (let rest = line; at > this.used - digits; rest = Math.floor(rest / 10)) b[--at] = 48 + (rest % 10);
    b[this.used++] = LF;
  }

  /** A whole piece of text, such as a header or a row built as a string. */
  text(s: string): void {
    this.reserve(s.length * 3); // UTF-8 takes at most 3 bytes per UTF-16 unit
    this.used += this.buffer.write(s, this.used);
  }

  /** Hands on what is gathered. */
  flush(): void {
    if (this.used === 0) return;
    this.push(this.buffer.subarray(0, this.used));
    this.buffer = Buffer.allocUnsafeSlow(this.chunkBytes);
    this.used = 0;
  }

  /** Drops what is gathered and not yet handed on. */
  discard(): void {
    this.used = 0;
  }
}
