/**
 * A Cloud Storage look-alike on the local filesystem. Each generation's bytes
 * are a file of their own; a small JSON metadata file names the live
 * generation and is replaced atomically (write + rename), so a reader sees an
 * object either whole or not at all, and a crash mid-write leaves only an
 * unreferenced file (start-up cleanup, removeTempFiles, removes it). An object up to INLINE_OBJECT_BYTES (a JSON record, a
 * marker) is kept inside its metadata file instead, after the JSON line:
 * one file to create per write instead of two, which is most of what a write
 * costs here. A CSV is not: the warehouse reads it by path (uri), which wrote
 * an inline one out again, an atomic replacement more per stored file. Metadata and objects up to SMALL_OBJECT_BYTES are written and
 * read with synchronous calls (small-files.ts says why); larger objects stream.
 */
import { createHash, hash, randomBytes } from 'node:crypto';
import fss, { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { removeLockLeftovers, withFileLock } from './file-lock.js';
import { atomicWriteFileSync, ensureDir, inDir, readFileIfExists, removeIfExists, yieldToEventLoop } from './small-files.js';
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
import { SpillingSink } from '../../core/spill.js';

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

/** An empty, `.` or `..` segment (the empty name included), a NUL or a backslash: a name that could leave its directory. */
const INVALID_NAME = /(?:^|\/)\.{0,2}(?:\/|$)|[\0\\]/;

function checkName(name: string): void {
  if (INVALID_NAME.test(name)) throw new Error(`invalid object name: ${JSON.stringify(name)}`);
}

/** Entries a listing reads between two turns of the event loop (about a millisecond of reads). */
const LISTED_PER_TURN = 64;

/** Objects up to this size are held in memory while written and written and read in one call. */
export const SMALL_OBJECT_BYTES = 256 * 1024;

/** Objects up to this size are stored inside their metadata file, CSV excepted (see above). */
export const INLINE_OBJECT_BYTES = 64 * 1024;

const inlined = (bytes: Buffer, contentType: string): boolean => bytes.length <= INLINE_OBJECT_BYTES && contentType !== 'text/csv';

/** The live generation's metadata and, for an inline object, its bytes. */
interface Entry {
  info: ObjectInfo;
  inline?: Buffer;
}

const NEWLINE = 0x0a;

/** JSON never contains a raw line break, so the first one ends the metadata. */
function parseEntry(file: Buffer): Entry {
  const end = file.indexOf(NEWLINE);
  const info = JSON.parse(file.toString('utf8', 0, end < 0 ? file.length : end)) as ObjectInfo;
  return end < 0 ? { info } : { info, inline: file.subarray(end + 1) };
}

/** An object's bytes before commit: in memory when small, else in a temp file. */
type Content = { bytes: Buffer } | { tmp: string };

/** Resolves when the file is closed, so a temp file is never removed while its open is still pending. */
const closed = (file: WriteStream): Promise<void> =>
  new Promise((resolve, reject) => file.once('close', () => (file.errored ? reject(file.errored) : resolve())));

/** Notification retries after a failed first attempt, spaced 1 s, 2 s, … up to 30 s apart: about ten minutes in all. */
const NOTIFY_RETRIES = 25;

/**
 * As with GCS, the notification is not part of the write: an object once
 * committed stays written even if announcing it fails (the bus's disk is
 * full). The announcement is retried in the background; if the process dies
 * first, the start-up reconciler (loader/reconcile.ts) finds the object.
 */
async function notify(listener: FinalizeListener, info: ObjectInfo, attempt = 0): Promise<void> {
  try {
    await listener(info);
  } catch {
    if (attempt >= NOTIFY_RETRIES) return;
    setTimeout(() => void notify(listener, info, attempt + 1), Math.min(30_000, 1000 * 2 ** attempt)).unref();
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

  async write(name: string, source: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectInfo> {
    checkName(name);
    if (Buffer.isBuffer(source)) {
      const md5Hash = options.md5 === false ? undefined : hash('md5', source, 'base64');
      return this.commit(name, { bytes: source }, { size: source.length, md5Hash, ...this.fields(options) });
    }
    ensureDir(this.tmpDir);
    const tmp = path.join(this.tmpDir, randomBytes(12).toString('hex'));
    const md5 = options.md5 === false ? undefined : createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5?.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const sink = new SpillingSink(SMALL_OBJECT_BYTES, () => {
      const file = createWriteStream(tmp);
      return { stream: file, done: closed(file) };
    });
    try {
      await pipeline(source, measure, sink, { signal: options.signal });
    } catch (e) {
      // The sink closes only after a spilled temp file has: removing the file before that could leave it behind.
      if (!sink.closed) await new Promise((resolve) => sink.once('close', resolve));
      fss.rmSync(tmp, { force: true });
      throw e;
    }
    const held = sink.held;
    return this.commit(name, held ? { bytes: held } : { tmp }, { size, md5Hash: md5?.digest('base64'), ...this.fields(options) });
  }

  private fields(options: WriteOptions): Pick<ObjectInfo, 'contentType' | 'metadata'> & Preconditions {
    return { contentType: options.contentType ?? 'application/octet-stream', metadata: options.metadata ?? {}, ifGenerationMatch: options.ifGenerationMatch };
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
      const entry = this.entry(name);
      const generation = options.generation ?? entry?.info.generation;
      if (!generation) throw missing();
      if (entry?.inline && entry.info.generation === generation) {
        stream.end(entry.inline);
        return stream;
      }
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
    await yieldToEventLoop();
    return this.entry(name)?.info;
  }

  async readSmall(name: string): Promise<{ info: ObjectInfo; bytes: Buffer } | undefined> {
    checkName(name);
    await yieldToEventLoop();
    const entry = this.entry(name);
    if (!entry) return undefined;
    if (entry.inline) return { info: entry.info, bytes: entry.inline };
    const bytes = readFileIfExists(this.contentPath(name, entry.info.generation));
    if (!bytes) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${name}#${entry.info.generation}`);
    return { info: entry.info, bytes };
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
    for (const [i, name] of names.entries()) {
      // Metadata reads never wait for the disk: without a turn of the loop now and then, a flush listing a
      // thousand pending markers held it for all of them.
      if (i > 0 && i % LISTED_PER_TURN === 0) await yieldToEventLoop();
      const info = this.entry(name)?.info;
      if (info) yield info;
    }
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkName(destination);
    await yieldToEventLoop();
    const entry = this.entry(source);
    if (!entry) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${source}`);
    const src = entry.info;
    if (options.ifSourceGenerationMatch !== undefined && options.ifSourceGenerationMatch !== src.generation) {
      throw new PreconditionFailedError(`${source}: generation ${src.generation} does not match ${options.ifSourceGenerationMatch}`);
    }
    const fields = {
      size: src.size,
      md5Hash: src.md5Hash,
      contentType: src.contentType,
      metadata: options.metadata ?? src.metadata,
      ifGenerationMatch: options.ifGenerationMatch,
    };
    if (entry.inline) return this.commit(destination, { bytes: entry.inline }, fields);
    // A generation's bytes never change, so a hard link is a copy at any size.
    const tmp = path.join(this.tmpDir, randomBytes(12).toString('hex'));
    try {
      inDir(this.tmpDir, () => fss.linkSync(this.contentPath(source, src.generation), tmp));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(`No such object: ${this.bucket}/${source}`);
      await fs.copyFile(this.contentPath(source, src.generation), tmp);
    }
    return this.commit(destination, { tmp }, fields);
  }

  async delete(name: string, options: Preconditions = {}): Promise<void> {
    checkName(name);
    await this.locked(name, async () => {
      const current = this.entry(name);
      if (!current) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${name}`);
      this.checkPrecondition(name, current.info, options);
      fss.unlinkSync(this.metaPath(name));
      this.removeContent(name, current);
    });
  }

  /**
   * Removes what writes that never committed (the process died mid-write) left, changed before `before`:
   * spilled uploads in tmp/, half-done atomic replacements (`*.tmp`) beside metadata files, and generations'
   * content files no metadata names (orphanedContent); and what processes killed while taking or breaking a lock
   * on an object left in locks/ (file-lock.ts). Returns how many.
   * The change time, not the modification time, dates a file: a copy hard-links the source's file, whose
   * modification time may be long past while that copy is still being committed.
   */
  async removeTempFiles(before: Date): Promise<number> {
    const stale = async (dir: string, candidates: string[]): Promise<string[]> => {
      const found: string[] = [];
      for (const f of candidates) {
        const stat = await fs.stat(path.join(dir, f)).catch(() => undefined);
        if (stat?.isFile() && stat.ctimeMs < before.getTime()) found.push(path.join(dir, f));
      }
      return found;
    };
    const listed = (dir: string): Promise<string[]> => fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
    const files = [
      ...(await stale(this.tmpDir, await listed(this.tmpDir))),
      ...(await stale(this.metaDir, (await listed(this.metaDir)).filter((f) => f.endsWith('.tmp')))),
      ...(await stale(this.objectsDir, await this.orphanedContent(await listed(this.objectsDir)))),
    ];
    for (const file of files) await fs.rm(file, { force: true });
    return files.length + (await removeLockLeftovers(this.locksDir));
  }

  /**
   * Of the files under objects/, the `<name>#<generation>` ones whose object has no metadata or another live
   * generation: a new generation whose metadata never landed, or a replaced or deleted one not yet removed.
   * Each object's metadata is read once, however many files it has; one that cannot be parsed keeps its files.
   */
  private async orphanedContent(files: string[]): Promise<string[]> {
    const byObject = new Map<string, { file: string; generation: string }[]>();
    for (const file of files) {
      const hash = file.lastIndexOf('#');
      const name = file.slice(0, hash).split(path.sep).join('/');
      const generation = file.slice(hash + 1);
      if (hash < 1 || file[hash - 1] === path.sep || !/^\d+$/.test(generation)) continue;
      const generations = byObject.get(name) ?? [];
      generations.push({ file, generation });
      byObject.set(name, generations);
    }
    const orphans: string[] = [];
    let read = 0;
    for (const [name, generations] of byObject) {
      // Metadata reads never wait for the disk: let timers and I/O run between batches of them.
      if (++read % 1000 === 0) await yieldToEventLoop();
      let live: string | undefined;
      try {
        live = this.entry(name)?.info.generation;
      } catch {
        continue;
      }
      for (const { file, generation } of generations) if (generation !== live) orphans.push(file);
    }
    return orphans;
  }

  /** A file DuckDB can read: an inline object's bytes are written out on first use (and go with the object). */
  uri(name: string, generation: string): string {
    const file = this.contentPath(name, generation);
    if (!fss.existsSync(file)) {
      const entry = this.entry(name);
      if (entry?.inline && entry.info.generation === generation) atomicWriteFileSync(file, entry.inline);
    }
    return file;
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
      const currentEntry = this.entry(name, fields.ifGenerationMatch === '0');
      const current = currentEntry?.info;
      try {
        this.checkPrecondition(name, current, fields);
      } catch (e) {
        if ('tmp' in content) fss.rmSync(content.tmp, { force: true });
        throw e;
      }
      const now = new Date().toISOString();
      const { ifGenerationMatch: _ignored, ...rest } = fields;
      const next: ObjectInfo = { bucket: this.bucket, name, generation: nextGeneration(current?.generation), metageneration: '1', timeCreated: now, updated: now, ...rest };
      const header = JSON.stringify(next);
      if ('bytes' in content && inlined(content.bytes, next.contentType)) {
        atomicWriteFileSync(this.metaPath(name), Buffer.concat([Buffer.from(`${header}\n`), content.bytes]));
      } else {
        const file = this.contentPath(name, next.generation);
        try {
          // The generation's file name is new, so writing it in place is as safe as a rename: nothing refers to it yet.
          inDir(path.dirname(file), () => ('tmp' in content ? fss.renameSync(content.tmp, file) : fss.writeFileSync(file, content.bytes)));
          atomicWriteFileSync(this.metaPath(name), header);
        } catch (e) {
          // A full disk: the bytes, unreferenced, would only fill it further.
          fss.rmSync(file, { force: true });
          if ('tmp' in content) fss.rmSync(content.tmp, { force: true });
          throw e;
        }
      }
      if (currentEntry) this.removeContent(name, currentEntry);
      return next;
    });
    for (const listener of this.listeners) await notify(listener, info);
    return info;
  }

  /** The file of a generation replaced or deleted. */
  private removeContent(name: string, entry: Entry): void {
    const file = this.contentPath(name, entry.info.generation);
    // An inline object has a file of its own only once uri() has written one: most never do, and unlinking a
    // missing file costs an ENOENT error with its stack, where the existence check throws nothing.
    if (!entry.inline || fss.existsSync(file)) removeIfExists(file);
  }

  /**
   * The live generation, if the object exists. `expectAbsent` (a create): reading a missing file costs an ENOENT
   * error with its stack, twice an existing file's read; an existence check first throws nothing, and its answer
   * is as good as the read's, both taken under the name's lock.
   */
  private entry(name: string, expectAbsent = false): Entry | undefined {
    const meta = this.metaPath(name);
    if (expectAbsent && !fss.existsSync(meta)) return undefined;
    const file = readFileIfExists(meta);
    return file && parseEntry(file);
  }

  private checkPrecondition(name: string, current: ObjectInfo | undefined, options: Preconditions): void {
    const expected = options.ifGenerationMatch;
    if (expected === undefined) return;
    const actual = current?.generation ?? '0';
    if (actual !== expected) throw new PreconditionFailedError(`${name}: generation ${actual} does not match ${expected}`);
  }

  /** Serializes read-check-write on one name, as GCS does server-side. */
  private async locked<T>(name: string, work: () => Promise<T>): Promise<T> {
    await yieldToEventLoop();
    const exclusive = this.options.crossProcess ? () => withFileLock(this.lockPath(name), work) : work;
    return this.queue.run(name, exclusive);
  }


  /** Hashed, so lock files stay flat and never look like object names. */
  private lockPath(name: string): string {
    return path.join(this.locksDir, `${hash('sha256', name, 'hex').slice(0, 32)}.lock`);
  }

  // Joined by hand: checkName has ruled out every segment path.join would normalise, and join costs more than the read.
  private metaPath(name: string): string {
    return `${this.metaDir}/${name}.json`;
  }

  private contentPath(name: string, generation: string): string {
    return `${this.objectsDir}/${name}#${generation}`;
  }
}
