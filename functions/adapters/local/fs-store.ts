/**
 * A Cloud Storage look-alike on the local filesystem. Each generation's bytes
 * are a file of their own; a small JSON metadata file names the live
 * generation and is replaced atomically (write + rename), so a reader sees an
 * object either whole or not at all, and a crash mid-write leaves only an
 * unreferenced file. Metadata and objects up to SMALL_OBJECT_BYTES are
 * written and read with synchronous calls (small-files.ts says why); larger
 * objects stream.
 */
import { createHash, randomBytes } from 'node:crypto';
import fss, { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { withFileLock } from './file-lock.js';
import { atomicWriteFileSync, ensureDir, inDir, readFileIfExists } from './small-files.js';
import {
  ObjectNotFoundError,
  PreconditionFailedError,
  type CopyOptions,
  type ObjectInfo,
  type ObjectStore,
  type Preconditions,
  type SignedRequest,
  type SignedUrlOptions,
  type WriteOptions,
} from '../../core/ports.js';
import { signedHeaders, signedMethod } from '../../core/signed-url.js';
import type { LocalUrlSigner } from './url-signer.js';
import { KeyedQueue } from '../../core/keyed-queue.js';

export type FinalizeListener = (info: ObjectInfo) => Promise<void>;

/**
 * GCS generations are microsecond timestamps; keep them strictly increasing
 * within a process, and past the object's current generation, which another
 * process sharing the directory may have written in the same millisecond.
 */
let lastGeneration = 0n;
function nextGeneration(current = '0'): string {
  const now = BigInt(Date.now()) * 1000n;
  lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
  if (lastGeneration <= BigInt(current)) lastGeneration = BigInt(current) + 1n;
  return lastGeneration.toString();
}

function checkName(name: string): void {
  const segments = name.split('/');
  if (!name || name.includes('\0') || name.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid object name: ${JSON.stringify(name)}`);
  }
}

/** Objects up to this size are held in memory while written and written and read in one call. */
export const SMALL_OBJECT_BYTES = 256 * 1024;

/** An object's bytes before commit: in memory when small, else in a temp file. */
type Content = { bytes: Buffer } | { tmp: string };

/**
 * Hashes and counts what it is given, holds it in memory up to
 * SMALL_OBJECT_BYTES and spills to `tmp` past that.
 */
class ObjectSink extends Writable {
  readonly md5 = createHash('md5');
  size = 0;
  private chunks: Buffer[] = [];
  private file?: WriteStream;

  constructor(private readonly tmp: string) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.md5.update(chunk);
    this.size += chunk.length;
    if (!this.file) {
      this.chunks.push(chunk);
      if (this.size <= SMALL_OBJECT_BYTES) return done();
      this.file = createWriteStream(this.tmp);
      this.file.on('error', (e) => this.destroy(e));
      chunk = Buffer.concat(this.chunks);
      this.chunks = [];
    }
    if (this.file.write(chunk)) done();
    else this.file.once('drain', () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    if (!this.file) return done();
    this.file.end();
    this.file.once('close', () => done(this.file!.errored));
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!this.file || this.file.closed) return done(error);
    this.file.destroy();
    this.file.once('close', () => done(error));
  }

  /** Once finished: what commit() takes; a temp file only if it spilled. */
  content(): Content {
    return this.file ? { tmp: this.tmp } : { bytes: Buffer.concat(this.chunks) };
  }

  /** Once failed: removes the temp file if there is one. */
  discard(): void {
    if (this.file) fss.rmSync(this.tmp, { force: true });
  }
}

export class FsObjectStore implements ObjectStore {
  private readonly objectsDir: string;
  private readonly metaDir: string;
  private readonly tmpDir: string;
  private readonly locksDir: string;
  private readonly queue = new KeyedQueue();
  private readonly listeners: FinalizeListener[] = [];

  /**
   * `crossProcess`: other processes write to the same directory, so preconditions take a file lock too.
   * `signer`: makes signed URLs that the local gateway serves (functions/local/storage-routes.ts).
   */
  constructor(
    root: string,
    readonly bucket: string,
    private readonly options: { crossProcess?: boolean; signer?: LocalUrlSigner } = {},
  ) {
    const base = path.join(root, bucket);
    this.objectsDir = path.join(base, 'objects');
    this.metaDir = path.join(base, 'meta');
    this.tmpDir = path.join(base, 'tmp');
    this.locksDir = path.join(base, 'locks');
  }

  /** Called after each object is finalized: where a GCS bucket would send a notification. */
  onFinalize(listener: FinalizeListener): void {
    this.listeners.push(listener);
  }

  async write(name: string, source: Readable, options: WriteOptions = {}): Promise<ObjectInfo> {
    checkName(name);
    ensureDir(this.tmpDir);
    const sink = new ObjectSink(path.join(this.tmpDir, randomBytes(12).toString('hex')));
    try {
      // pipeline waits for the sink's close, so a spilled temp file is closed before it is removed.
      await pipeline(source, sink, { signal: options.signal });
    } catch (e) {
      sink.discard();
      throw e;
    }
    return this.commit(name, sink.content(), {
      size: sink.size,
      md5Hash: sink.md5.digest('base64'),
      contentType: options.contentType ?? 'application/octet-stream',
      metadata: options.metadata ?? {},
      ifGenerationMatch: options.ifGenerationMatch,
    });
  }

  read(name: string, options: { generation?: string } = {}): Readable {
    checkName(name);
    // A Readable is returned at once; the lookup errors surface as a stream error, as with GCS.
    const stream = new PassThrough();
    const missing = (): ObjectNotFoundError =>
      new ObjectNotFoundError(`No such object: ${this.bucket}/${name}${options.generation ? `#${options.generation}` : ''}`);
    let fd: number;
    let size: number;
    try {
      const generation = options.generation ?? this.current(name)?.generation;
      if (!generation) throw missing();
      // Opened now, so a generation replaced or deleted after this call is still read whole.
      fd = fss.openSync(this.contentPath(name, generation), 'r');
      size = fss.fstatSync(fd).size;
    } catch (e) {
      const error = (e as NodeJS.ErrnoException).code === 'ENOENT' ? missing() : (e as Error);
      process.nextTick(() => stream.destroy(error));
      return stream;
    }
    if (size <= SMALL_OBJECT_BYTES) {
      try {
        stream.end(fss.readFileSync(fd));
      } finally {
        fss.closeSync(fd);
      }
      return stream;
    }
    pipeline(createReadStream('', { fd }), stream).catch((e: Error) => stream.destroy(e));
    return stream;
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    checkName(name);
    return this.current(name);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Only the directory the prefix names is walked, not the whole bucket.
    const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const files = await fs.readdir(path.join(this.metaDir, dir), { recursive: true }).catch(() => [] as string[]);
    const names = files
      .filter((f) => f.endsWith('.json'))
      .map((f) => dir + f.slice(0, -'.json'.length).split(path.sep).join('/'))
      .filter((n) => n.startsWith(prefix))
      .sort();
    for (const name of names) {
      const info = this.current(name);
      if (info) yield info;
    }
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkName(destination);
    const src = this.current(source);
    if (!src) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${source}`);
    if (options.ifSourceGenerationMatch !== undefined && options.ifSourceGenerationMatch !== src.generation) {
      throw new PreconditionFailedError(`${source}: generation ${src.generation} does not match ${options.ifSourceGenerationMatch}`);
    }
    // A generation's bytes never change, so a hard link is a copy at any size.
    const tmp = path.join(this.tmpDir, randomBytes(12).toString('hex'));
    try {
      inDir(this.tmpDir, () => fss.linkSync(this.contentPath(source, src.generation), tmp));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(`No such object: ${this.bucket}/${source}`);
      await fs.copyFile(this.contentPath(source, src.generation), tmp);
    }
    return this.commit(destination, { tmp }, {
      size: src.size,
      md5Hash: src.md5Hash,
      contentType: src.contentType,
      metadata: options.metadata ?? src.metadata,
      ifGenerationMatch: options.ifGenerationMatch,
    });
  }

  async delete(name: string, options: Preconditions = {}): Promise<void> {
    checkName(name);
    await this.locked(name, async () => {
      const current = this.current(name);
      if (!current) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${name}`);
      this.checkPrecondition(name, current, options);
      fss.rmSync(this.metaPath(name));
      fss.rmSync(this.contentPath(name, current.generation), { force: true });
    });
  }

  uri(name: string, generation: string): string {
    return this.contentPath(name, generation);
  }

  async signedUrl(name: string, options: SignedUrlOptions): Promise<SignedRequest> {
    checkName(name);
    const { signer } = this.options;
    if (!signer) throw new Error('this local store has no URL signer');
    return signer.sign(this.bucket, name, { method: signedMethod(options.action), headers: signedHeaders(options), expiresAt: options.expiresAt });
  }

  private async commit(
    name: string,
    content: Content,
    fields: Pick<ObjectInfo, 'size' | 'md5Hash' | 'contentType' | 'metadata'> & Preconditions,
  ): Promise<ObjectInfo> {
    const info = await this.locked(name, async () => {
      const current = this.current(name);
      try {
        this.checkPrecondition(name, current, fields);
      } catch (e) {
        if ('tmp' in content) fss.rmSync(content.tmp, { force: true });
        throw e;
      }
      const now = new Date().toISOString();
      const { ifGenerationMatch: _ignored, ...rest } = fields;
      const next: ObjectInfo = { bucket: this.bucket, name, generation: nextGeneration(current?.generation), metageneration: '1', timeCreated: now, updated: now, ...rest };
      const file = this.contentPath(name, next.generation);
      // The generation's file name is new, so writing it in place is as safe as a rename: nothing refers to it yet.
      inDir(path.dirname(file), () => ('tmp' in content ? fss.renameSync(content.tmp, file) : fss.writeFileSync(file, content.bytes)));
      atomicWriteFileSync(this.metaPath(name), JSON.stringify(next));
      if (current) fss.rmSync(this.contentPath(name, current.generation), { force: true });
      return next;
    });
    for (const listener of this.listeners) await listener(info);
    return info;
  }

  /** The live generation's metadata, if the object exists. */
  private current(name: string): ObjectInfo | undefined {
    const text = readFileIfExists(this.metaPath(name));
    return text === undefined ? undefined : (JSON.parse(text) as ObjectInfo);
  }

  private checkPrecondition(name: string, current: ObjectInfo | undefined, options: Preconditions): void {
    const expected = options.ifGenerationMatch;
    if (expected === undefined) return;
    const actual = current?.generation ?? '0';
    if (actual !== expected) throw new PreconditionFailedError(`${name}: generation ${actual} does not match ${expected}`);
  }

  /** Serializes read-check-write on one name, as GCS does server-side. */
  private async locked<T>(name: string, work: () => Promise<T>): Promise<T> {
    const exclusive = this.options.crossProcess ? () => withFileLock(this.lockPath(name), work) : work;
    return this.queue.run(name, exclusive);
  }


  /** Hashed, so lock files stay flat and never look like object names. */
  private lockPath(name: string): string {
    return path.join(this.locksDir, `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.lock`);
  }

  private metaPath(name: string): string {
    return path.join(this.metaDir, `${name}.json`);
  }

  private contentPath(name: string, generation: string): string {
    return path.join(this.objectsDir, `${name}#${generation}`);
  }
}
