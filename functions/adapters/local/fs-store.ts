/**
 * A Cloud Storage look-alike on the local filesystem. Each generation's bytes
 * are a file of their own; a small JSON metadata file names the live
 * generation and is replaced atomically (write + rename), so a reader sees an
 * object either whole or not at all, and a crash mid-write leaves only an
 * unreferenced temp file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { withFileLock } from './file-lock.js';
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

async function atomicWriteFile(file: string, content: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(tmp, content);
  await fs.rename(tmp, file);
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
    await fs.mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, randomBytes(12).toString('hex'));
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const file = createWriteStream(tmp);
    try {
      await pipeline(source, measure, file, { signal: options.signal });
    } catch (e) {
      // An abort can reject before the file is even open: removing it before it has closed would leave it behind.
      if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
      await fs.rm(tmp, { force: true });
      throw e;
    }
    return this.commit(name, tmp, {
      size,
      md5Hash: md5.digest('base64'),
      contentType: options.contentType ?? 'application/octet-stream',
      metadata: options.metadata ?? {},
      ifGenerationMatch: options.ifGenerationMatch,
    });
  }

  read(name: string, options: { generation?: string } = {}): Readable {
    checkName(name);
    // A Readable is returned at once; the lookup errors surface as a stream error, as with GCS.
    const stream = new Transform({ transform: (chunk, _e, done) => done(null, chunk) });
    (async () => {
      const generation = options.generation ?? (await this.stat(name))?.generation;
      const missing = new ObjectNotFoundError(`No such object: ${this.bucket}/${name}${options.generation ? `#${options.generation}` : ''}`);
      if (!generation) throw missing;
      const file = await fs.open(this.contentPath(name, generation)).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'ENOENT' ? missing : e;
      });
      await pipeline(file.createReadStream(), stream);
    })().catch((e: Error) => stream.destroy(e));
    return stream;
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    checkName(name);
    try {
      return JSON.parse(await fs.readFile(this.metaPath(name), 'utf8')) as ObjectInfo;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const files = await fs.readdir(this.metaDir, { recursive: true }).catch(() => [] as string[]);
    const names = files
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length).split(path.sep).join('/'))
      .filter((n) => n.startsWith(prefix))
      .sort();
    for (const name of names) {
      const info = await this.stat(name);
      if (info) yield info;
    }
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    checkName(destination);
    const src = await this.stat(source);
    if (!src) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${source}`);
    if (options.ifSourceGenerationMatch !== undefined && options.ifSourceGenerationMatch !== src.generation) {
      throw new PreconditionFailedError(`${source}: generation ${src.generation} does not match ${options.ifSourceGenerationMatch}`);
    }
    await fs.mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, randomBytes(12).toString('hex'));
    await fs.copyFile(this.contentPath(source, src.generation), tmp);
    return this.commit(destination, tmp, {
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
      const current = await this.stat(name);
      if (!current) throw new ObjectNotFoundError(`No such object: ${this.bucket}/${name}`);
      this.checkPrecondition(name, current, options);
      await fs.rm(this.metaPath(name));
      await fs.rm(this.contentPath(name, current.generation), { force: true });
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
    tmp: string,
    fields: Pick<ObjectInfo, 'size' | 'md5Hash' | 'contentType' | 'metadata'> & Preconditions,
  ): Promise<ObjectInfo> {
    const info = await this.locked(name, async () => {
      const current = await this.stat(name);
      try {
        this.checkPrecondition(name, current, fields);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
      const now = new Date().toISOString();
      const { ifGenerationMatch: _ignored, ...rest } = fields;
      const next: ObjectInfo = { bucket: this.bucket, name, generation: nextGeneration(current?.generation), metageneration: '1', timeCreated: now, updated: now, ...rest };
      const content = this.contentPath(name, next.generation);
      await fs.mkdir(path.dirname(content), { recursive: true });
      await fs.rename(tmp, content);
      await atomicWriteFile(this.metaPath(name), JSON.stringify(next));
      if (current) await fs.rm(this.contentPath(name, current.generation), { force: true });
      return next;
    });
    for (const listener of this.listeners) await listener(info);
    return info;
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
