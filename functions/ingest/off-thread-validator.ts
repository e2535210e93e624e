/**
 * CsvValidator on a worker thread, so that a second core can run it: the main
 * thread keeps receiving, hashing and writing while the thread reads and
 * checks (validator-thread.ts). Same stream contract as CsvValidator: bytes
 * in, the canonical CSV out, `rows` once it has ended, and the same
 * InvalidCsvError when the file is invalid. Used when the configuration gives
 * validation threads (VALIDATION_THREADS) and the file is declared large enough
 * (VALIDATION_THREAD_MIN_BYTES); docs/benchmarks.md says when that pays.
 *
 * Memory: the file's chunks are copied into buffers of CHUNK_BYTES, each moved
 * (transferred) to the thread once full and moved back once read, to be used
 * again; the canonical CSV comes back in chunks of the same size, each moved
 * over once. At most IN_FLIGHT_BYTES are on their way to the thread at a
 * time, so a fast client cannot queue a file in memory ahead of the checks.
 * The chunks are larger than a socket's (64 KiB): each message, each write of
 * the staging file and each stream stage it passes costs per chunk, not per
 * byte (docs/benchmarks.md, "Fewer, larger chunks").
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CsvFault } from '../core/problem.js';
import { validationStarted } from '../ops/events.js';
import { CsvValidator, InvalidCsvError, type ValidationLimits } from './validator.js';

export type ToThread =
  | { id: number; limits: ValidationLimits; outputChunkBytes: number }
  | { id: number; chunk: ArrayBuffer; length: number }
  | { id: number; end: true }
  | { id: number; cancel: true };

export type FromThread =
  | { id: number; out: Uint8Array }
  | { id: number; read: ArrayBuffer; length: number }
  | { id: number; rows: number }
  | { id: number; invalid: { faults: CsvFault[]; faultCount: number; rows: number; status: 413 | 422 } }
  | { id: number; error: string };

const CHUNK_BYTES = 256 * 1024;
const IN_FLIGHT_BYTES = 4 * CHUNK_BYTES;
/** Spare chunk buffers a thread keeps: enough for the uploads it usually has at once. */
const SPARE_CHUNKS = 8;

let bundled: string | undefined;

/**
 * Compiled, the thread runs validator-thread.js. From source (tsx, vitest) a
 * worker would not inherit the parent's module hooks, and tsx's own in the
 * thread cost ~30 MB of memory: the entry is bundled with esbuild into one
 * script instead, once per process, by its CLI in a process of its own (its
 * synchronous API would keep a thread of its own here, another ~15 MB).
 */
function startWorker(): Worker {
  if (!fileURLToPath(import.meta.url).endsWith('.ts')) return new Worker(new URL('./validator-thread.js', import.meta.url));
  const esbuild = createRequire(import.meta.url).resolve('esbuild/bin/esbuild');
  const entry = fileURLToPath(new URL('./validator-thread.ts', import.meta.url));
  bundled ??= execFileSync(process.execPath, [esbuild, entry, '--bundle', '--platform=node', '--format=cjs', '--log-level=warning'], { encoding: 'utf8' });
  return new Worker(bundled, { eval: true });
}

/** One worker thread and the uploads it is validating. */
class ValidatorThread {
  private readonly worker = startWorker();
  readonly sessions = new Map<number, OffThreadValidator>();
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly gone: (thread: ValidatorThread) => void) {
    // Only an upload in progress keeps the process alive for it (see open/close).
    this.worker.unref();
    this.worker.on('message', (m: FromThread) => {
      if ('read' in m) this.reuse(m.read);
      this.sessions.get(m.id)?.receive(m);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the validator thread exited with code ${code}`)));
  }

  open(id: number, session: OffThreadValidator, limits: ValidationLimits): void {
    if (this.sessions.size === 0) this.worker.ref();
    this.sessions.set(id, session);
    this.post({ id, limits, outputChunkBytes: CHUNK_BYTES });
  }

  close(id: number): void {
    if (this.sessions.delete(id) && this.sessions.size === 0) this.worker.unref();
  }

  post(message: ToThread, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /** An empty chunk buffer, to fill and send. */
  chunk(): Uint8Array {
    return new Uint8Array(this.spare.pop() ?? new ArrayBuffer(CHUNK_BYTES));
  }

  /** Moves the first `length` bytes of a chunk buffer to the thread. */
  send(id: number, chunk: Uint8Array, length: number): void {
    const buffer = chunk.buffer as ArrayBuffer;
    this.post({ id, chunk: buffer, length }, [buffer]);
  }

  /** A chunk buffer the thread has read, to be used again. */
  reuse(chunk: ArrayBuffer): void {
    if (this.spare.length < SPARE_CHUNKS) this.spare.push(chunk);
  }

  /** A crash of the thread (a bug, or out of memory) fails the uploads on it; the next upload starts a new one. */
  private fail(e: Error): void {
    this.gone(this);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) s.destroy(e);
  }
}

const threads: ValidatorThread[] = [];
let lastId = 0;

function newThread(): ValidatorThread {
  const thread = new ValidatorThread((t) => {
    const at = threads.indexOf(t);
    if (at >= 0) threads.splice(at, 1);
  });
  threads.push(thread);
  return thread;
}

/** The least busy thread, or a new one while there are fewer than `max`. */
function pickThread(max: number): ValidatorThread {
  const least = threads.reduce<ValidatorThread | undefined>((best, t) => (!best || t.sessions.size < best.sessions.size ? t : best), undefined);
  return least && (least.sessions.size === 0 || threads.length >= max) ? least : newThread();
}

/** Starts a thread ahead of the first upload, which would otherwise wait for it (a server at start-up). */
export function startValidatorThread(max: number): void {
  if (max > 0 && threads.length === 0) newThread();
}

export class OffThreadValidator extends Transform {
  rows = 0;
  private readonly id = ++lastId;
  private readonly thread: ValidatorThread;
  private inFlight = 0;
  /** The chunk buffer being filled, and how much of it is. */
  private filling?: Uint8Array;
  private filled = 0;
  /** The write waiting for room in flight. */
  private waiting?: TransformCallback;
  private flushed?: TransformCallback;

  constructor(limits: ValidationLimits & { validationThreads: number }) {
    // Room for a canonical chunk the thread sends while the last one is being written.
    super({ readableHighWaterMark: CHUNK_BYTES });
    this.thread = pickThread(limits.validationThreads);
    this.thread.open(this.id, this, limits);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (let at = 0; at < chunk.length; ) {
      this.filling ??= this.thread.chunk();
      const copied = chunk.copy(this.filling, this.filled, at);
      at += copied;
      this.filled += copied;
      if (this.filled === CHUNK_BYTES) this.sendFilled();
    }
    if (this.inFlight < IN_FLIGHT_BYTES) done();
    else this.waiting = done;
  }

  override _flush(done: TransformCallback): void {
    if (this.filled > 0) this.sendFilled();
    this.flushed = done;
    this.thread.post({ id: this.id, end: true });
  }

  private sendFilled(): void {
    this.thread.send(this.id, this.filling!, this.filled);
    this.inFlight += this.filled;
    this.filling = undefined;
    this.filled = 0;
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (this.thread.sessions.has(this.id)) this.thread.post({ id: this.id, cancel: true });
    this.thread.close(this.id);
    done(error);
  }

  /** What the thread says about this upload. */
  receive(m: FromThread): void {
    if ('out' in m) {
      this.push(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
    } else if ('read' in m) {
      this.inFlight -= m.length;
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.();
    } else if ('rows' in m) {
      this.rows = m.rows;
      this.thread.close(this.id);
      this.flushed?.();
    } else {
      this.thread.close(this.id);
      const { invalid } = m as Extract<FromThread, { invalid: unknown }>;
      this.destroy(invalid ? new InvalidCsvError(invalid.faults, invalid.faultCount, invalid.rows, invalid.status) : new Error(`validator thread: ${(m as { error: string }).error}`));
    }
  }
}

export type ValidatedOn = 'main' | 'worker';

/**
 * Where a file is validated, from its declared size in bytes (undefined: not
 * declared). The thread pays only for files large enough that its messages
 * and copies cost less than the second core gives back; a 100-row file costs
 * 1.3× the CPU on it (docs/benchmarks.md). A file of unknown size (a chunked
 * request) goes to the thread: a large file streamed by a program is the case
 * that needs it, while curl, browsers and HTTP clients send a Content-Length
 * with a file, so small chunked uploads are rare.
 */
export function validationPlace({ validationThreads = 0, validationThreadMinBytes = 0 }: ValidationLimits, declaredBytes: number | undefined): ValidatedOn {
  if (validationThreads <= 0) return 'main';
  return declaredBytes === undefined || declaredBytes >= validationThreadMinBytes ? 'worker' : 'main';
}

/** The validator for one file, where validationPlace puts it; `declaredBytes` as it takes them. */
export function streamingValidator(limits: ValidationLimits, declaredBytes?: number): CsvValidator | OffThreadValidator {
  const { validationThreads = 0, validationThreadMinBytes: _, ...own } = limits;
  const place = validationPlace(limits, declaredBytes);
  validationStarted(place);
  return place === 'worker' ? new OffThreadValidator({ ...own, validationThreads }) : new CsvValidator(own);
}
