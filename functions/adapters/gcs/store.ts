/**
 * The object store on Cloud Storage through the official client. Uploads are
 * resumable sessions streamed from the source, so a large CSV never sits in
 * memory and a session that is never finalized leaves no object behind.
 * Preconditions travel as GCS query parameters, so GCS itself arbitrates
 * races between writers.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type File, type FileMetadata, type StorageOptions } from '@google-cloud/storage';
import {
  ObjectNotFoundError,
  PreconditionFailedError,
  StoreUnavailableError,
  type CopyOptions,
  type ObjectInfo,
  type ObjectStore,
  type Preconditions,
  type SignedRequest,
  type SignedUrlOptions,
  type WriteOptions,
} from '../../core/ports.js';
import { signedHeaders, signedMethod } from '../../core/signed-url.js';

/** HTTP status of a client error: ApiError carries `code`, gaxios errors `status` or `response.status`. */
function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const candidate of [e.code, e.status, e.response?.status]) if (typeof candidate === 'number') return candidate;
  return undefined;
}

/** Maps the statuses callers act on to the port's errors; everything else passes through. */
function mapError(error: unknown, what: string): Error {
  const status = statusOf(error);
  const message = `${what}: ${(error as Error).message}`;
  if (status === 412) return new PreconditionFailedError(message, { cause: error });
  if (status === 404) return new ObjectNotFoundError(message, { cause: error });
  // What the client retries by itself (its RETRYABLE_ERR_FN_DEFAULT), still failing once it stopped.
  if (status === 408 || status === 429 || (status !== undefined && status >= 500)) return new StoreUnavailableError(message, { cause: error });
  return error as Error;
}

function toInfo(m: FileMetadata): ObjectInfo {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.metadata ?? {})) if (v !== null && v !== undefined) metadata[k] = String(v);
  return {
    bucket: String(m.bucket),
    name: String(m.name),
    generation: String(m.generation),
    metageneration: String(m.metageneration ?? '1'),
    size: Number(m.size ?? 0),
    contentType: m.contentType ?? 'application/octet-stream',
    ...(m.md5Hash ? { md5Hash: m.md5Hash } : {}),
    ...(m.crc32c ? { crc32c: m.crc32c } : {}),
    timeCreated: String(m.timeCreated),
    updated: String(m.updated),
    metadata,
  };
}

type RequestInterceptor = File['interceptors'][number];

/** The client hands interceptors its own request options, which carry `uri`; its typings say otherwise. */
const addQuery = (query: Record<string, string>): RequestInterceptor => ({
  request: (req) => ({ ...req, qs: { ...(req as { qs?: object }).qs, ...query } }) as ReturnType<RequestInterceptor['request']>,
});

const preconditionOpts = (p: Preconditions) => (p.ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch: p.ifGenerationMatch } });

/** Passes the bytes on, adding them to `hash` as they go. */
const hashing = (hash: Hash): Transform =>
  new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });

export class GcsObjectStore implements ObjectStore {
  private readonly storage: Storage;

  /** Options go to the client as they are: it honours `apiEndpoint` and `STORAGE_EMULATOR_HOST` itself. */
  constructor(
    readonly bucket: string,
    storage: Storage | StorageOptions = {},
  ) {
    this.storage = storage instanceof Storage ? storage : new Storage(storage);
  }

  /**
   * A Buffer goes as one multipart request (`resumable: false`); a stream as a
   * resumable upload. The client retries a conditional write whose response
   * was lost; if the first attempt had succeeded, the retry meets its own
   * object and gets 412. So a 412 is read back: an object with our bytes
   * (MD5) and our metadata is our write, and succeeds. Only a conditional
   * write can meet a 412, so only one is hashed as it goes: a staging object
   * of a 1 GB upload is not (MD5 costs ~1.8 s of CPU per GB on the event loop).
   */
  async write(name: string, source: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectInfo> {
    const file = this.file(name);
    const contentType = options.contentType ?? 'application/octet-stream';
    const metadata = options.metadata ?? {};
    const upload = { ...preconditionOpts(options), metadata: { contentType, metadata } };
    const md5 = options.ifGenerationMatch === undefined ? undefined : createHash('md5');
    try {
      if (Buffer.isBuffer(source)) {
        md5?.update(source);
        await file.save(source, { ...upload, resumable: false });
      } else {
        const sink = file.createWriteStream({ ...upload, resumable: true });
        const signal = options.signal ? { signal: options.signal } : {};
        await (md5 ? pipeline(source, hashing(md5), sink, signal) : pipeline(source, sink, signal));
      }
    } catch (e) {
      const mapped = mapError(e, `write gs://${this.bucket}/${name}`);
      if (md5 && mapped instanceof PreconditionFailedError) {
        const ours = await this.ifOurs(name, md5.digest('base64'), contentType, metadata);
        if (ours) return ours;
      }
      throw mapped;
    }
    return toInfo(file.metadata);
  }

  /** The live object if it has exactly these bytes, content type and custom metadata: what our own earlier attempt wrote. */
  private async ifOurs(name: string, md5Hash: string, contentType: string, metadata: Record<string, string>): Promise<ObjectInfo | undefined> {
    const live = await this.stat(name);
    if (!live || live.md5Hash !== md5Hash || live.contentType !== contentType) return undefined;
    const keys = Object.keys(metadata);
    const same = keys.length === Object.keys(live.metadata).length && keys.every((k) => live.metadata[k] === metadata[k]);
    return same ? live : undefined;
  }

  read(name: string, options: { generation?: string } = {}): Readable {
    const source = this.file(name, options.generation).createReadStream();
    const out = new PassThrough();
    // Not `pipeline`: it would destroy `out` with the unmapped error before we could map it.
    source.on('error', (e) => out.destroy(mapError(e, `read gs://${this.bucket}/${name}${options.generation ? `#${options.generation}` : ''}`)));
    out.on('close', () => source.destroy());
    return source.pipe(out);
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    try {
      const [metadata] = await this.file(name).getMetadata();
      return toInfo(metadata);
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw mapError(e, `stat gs://${this.bucket}/${name}`);
    }
  }

  async readSmall(name: string): Promise<{ info: ObjectInfo; bytes: Buffer } | undefined> {
    const info = await this.stat(name);
    if (!info) return undefined;
    try {
      const [bytes] = await this.file(name, info.generation).download();
      return { info, bytes };
    } catch (e) {
      throw mapError(e, `read gs://${this.bucket}/${name}#${info.generation}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.storage
        .bucket(this.bucket)
        .getFiles({ prefix, autoPaginate: false, ...(pageToken ? { pageToken } : {}) })
        .catch((e: unknown) => Promise.reject(mapError(e, `list gs://${this.bucket}/${prefix}`)));
      for (const file of files) yield toInfo(file.metadata);
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    const src = this.file(source);
    const expected = options.ifSourceGenerationMatch;
    if (expected !== undefined) {
      // File#copy has no ifSourceGenerationMatch option; `sourceGeneration` would
      // copy an older generation instead of failing, so add the real precondition.
      src.interceptors.push(addQuery({ ifSourceGenerationMatch: expected }));
    }
    try {
      const [, response] = await src.copy(this.file(destination), {
        ...preconditionOpts(options),
        ...(options.metadata ? { metadata: options.metadata } : {}),
      });
      return toInfo((response as { resource: FileMetadata }).resource);
    } catch (e) {
      const mapped = mapError(e, `copy gs://${this.bucket}/${source} to ${destination}`);
      // A retried copy that had already succeeded (see write): the destination holds the source's bytes and our metadata.
      if (mapped instanceof PreconditionFailedError && options.ifGenerationMatch !== undefined) {
        const from = await this.stat(source);
        const ours = from?.md5Hash ? await this.ifOurs(destination, from.md5Hash, from.contentType, options.metadata ?? from.metadata) : undefined;
        if (ours) return ours;
      }
      throw mapped;
    }
  }

  async delete(name: string, options: Preconditions = {}): Promise<void> {
    try {
      await this.file(name).delete(options.ifGenerationMatch === undefined ? {} : { ifGenerationMatch: options.ifGenerationMatch });
    } catch (e) {
      throw mapError(e, `delete gs://${this.bucket}/${name}`);
    }
  }

  /**
   * BigQuery reads the live generation of a `gs://` URI and cannot name
   * another; loaded objects are promoted with ifGenerationMatch '0' and never
   * overwritten, so the live generation is the one the manifest records.
   */
  uri(name: string, _generation: string): string {
    return `gs://${this.bucket}/${name}`;
  }

  /**
   * V4 signing through the client: with a key file it signs locally; on Cloud
   * Functions it calls IAM signBlob as the runtime service account, which
   * needs roles/iam.serviceAccountTokenCreator on itself. The content type is
   * signed by the client itself; the other headers go in as extension headers.
   * For `resumable` the client adds `x-goog-resumable: start` and signs POST.
   */
  async signedUrl(name: string, options: SignedUrlOptions): Promise<SignedRequest> {
    const headers = signedHeaders(options);
    const { 'content-type': contentType, 'x-goog-resumable': _start, ...extensionHeaders } = headers;
    const [url] = await this.file(name).getSignedUrl({
      version: 'v4',
      action: options.action,
      expires: options.expiresAt,
      ...(contentType ? { contentType } : {}),
      ...(Object.keys(extensionHeaders).length ? { extensionHeaders } : {}),
    });
    return { method: signedMethod(options.action), url, headers, expiresAt: options.expiresAt.toISOString() };
  }

  private file(name: string, generation?: string): File {
    return this.storage.bucket(this.bucket).file(name, generation ? { generation } : {});
  }
}
