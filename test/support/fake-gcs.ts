/**
 * A loopback fake of the few Cloud Storage JSON API calls @google-cloud/storage
 * makes for the object store: resumable upload (session start + PUT),
 * objects.get (metadata and alt=media), objects.list, objects.rewrite and
 * objects.delete. Objects live in memory with real generation numbers and
 * precondition checks, responses have the JSON API's shapes, and every request
 * is recorded so tests can assert what the client sent. `dropResponses` makes
 * the next writes take effect but lose their response (the connection is
 * reset), as a network fault after GCS committed would. `unavailable` makes
 * the next requests answer 503 with Retry-After (test/support/unavailable.ts);
 * `onFinalize` hears of every object written, as a bucket notification would.
 *
 * Point the real client at it with `new Storage({ apiEndpoint: fake.endpoint })`.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { closeLoopback, listenLoopback } from './loopback.js';
import { Unavailable } from './unavailable.js';

export interface RecordedRequest {
  method: string;
  /** Path with the object name still percent-encoded, as sent. */
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface StoredObject {
  resource: Record<string, unknown>;
  bytes: Buffer;
}

interface Session {
  bucket: string;
  name: string;
  query: Record<string, string>;
  metadata: Record<string, unknown>;
  contentType: string;
  received: Buffer[];
}

// CRC32C (Castagnoli), so the client's own integrity check validates what the fake stored.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32c(bytes: Buffer): string {
  let crc = 0xffffffff;
  for (const b of bytes) crc = (CRC_TABLE[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The parts of a multipart body: each one's headers (lower-cased) and bytes. */
function multipartParts(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break; // the closing delimiter
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const part = body.subarray(start + 2, next - 2); // past the CRLF after the delimiter, before the CRLF ending the part
    const split = part.indexOf('\r\n\r\n');
    const headers = Object.fromEntries(
      part
        .subarray(0, split)
        .toString('utf8')
        .split('\r\n')
        .map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    parts.push({ headers, body: part.subarray(split + 4) });
    at = next;
  }
  return parts;
}

export class FakeGcs {
  readonly requests: RecordedRequest[] = [];
  /** Live objects by `bucket/name`. */
  readonly objects = new Map<string, StoredObject>();
  /** objects.list page size, small enough for tests to exercise paging. */
  pageSize = 1000;
  /** How many of the next object-creating requests commit, then reset the connection instead of answering. */
  dropResponses = 0;
  readonly unavailable = new Unavailable();
  /** Called with every object a request created (upload or rewrite), after it is stored. */
  onFinalize?: (bucket: string, name: string) => void;
  private readonly sessions = new Map<string, Session>();
  private generation = BigInt(Date.now()) * 1000n;
  private server?: http.Server;
  endpoint = '';

  async start(): Promise<this> {
    ({ server: this.server, endpoint: this.endpoint } = await listenLoopback((req, body, res) => this.handle(req, body, res)));
    return this;
  }

  async stop(): Promise<void> {
    await closeLoopback(this.server);
  }

  /** Requests whose method matches and whose path matches `pattern`. */
  find(method: string, pattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pattern.test(r.path));
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ method: req.method ?? '', path: url.pathname, query, headers: req.headers, body });
    if (this.unavailable.intercept({ method: req.method ?? '', path: url.pathname, query }, res)) return;
    try {
      this.route(req.method ?? '', url.pathname, query, req.headers, body, res);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, 'backendError', (e as Error).message);
      sendJson(res, err.status, { error: { code: err.status, message: err.message, errors: [{ domain: 'global', reason: err.reason, message: err.message }] } });
    }
  }

  private route(method: string, path: string, query: Record<string, string>, headers: http.IncomingHttpHeaders, body: Buffer, res: http.ServerResponse): void {
    let m: RegExpMatchArray | null;
    if (method === 'POST' && (m = path.match(/^\/upload\/storage\/v1\/b\/([^/]+)\/o$/))) {
      const bucket = decodeURIComponent(m[1] as string);
      if (query.uploadType === 'multipart') return this.multipartUpload(bucket, query, headers, body, res);
      if (query.uploadType !== 'resumable') throw new HttpError(501, 'notImplemented', `fake: uploadType=${query.uploadType} not supported`);
      return this.startSession(bucket, query, headers, body, res);
    }
    if (method === 'PUT' && /^\/upload\/storage\/v1\/b\/[^/]+\/o$/.test(path)) return this.putSession(query, headers, body, res);
    if ((m = path.match(/^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)\/rewriteTo\/b\/([^/]+)\/o\/([^/]+)$/)) && method === 'POST') {
      const [src, dst] = [this.key(m[1], m[2]), this.key(m[3], m[4])];
      return this.rewrite(src, dst, query, body, res);
    }
    if ((m = path.match(/^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/))) {
      const key = this.key(m[1], m[2]);
      if (method === 'GET') return this.get(key, query, res);
      if (method === 'DELETE') return this.delete(key, query, res);
    }
    if (method === 'GET' && (m = path.match(/^\/storage\/v1\/b\/([^/]+)\/o$/))) return this.list(decodeURIComponent(m[1] as string), query, res);
    throw new HttpError(404, 'notFound', `fake: no route for ${method} ${path}`);
  }

  /** One request: a multipart/related body of the JSON resource, then the bytes. */
  private multipartUpload(bucket: string, query: Record<string, string>, headers: http.IncomingHttpHeaders, body: Buffer, res: http.ServerResponse): void {
    const boundary = /boundary="?([^";]+)"?/.exec(String(headers['content-type'] ?? ''))?.[1];
    if (!String(headers['content-type']).startsWith('multipart/related') || !boundary) throw new HttpError(400, 'invalid', 'expected a multipart/related body');
    const parts = multipartParts(body, boundary);
    if (parts.length !== 2) throw new HttpError(400, 'invalid', `expected 2 parts, got ${parts.length}`);
    const metadata = JSON.parse(parts[0]!.body.toString('utf8')) as Record<string, unknown>;
    const name = (metadata.name as string | undefined) ?? query.name;
    if (!name) throw new HttpError(400, 'required', 'Required parameter: name');
    const contentType = (metadata.contentType as string | undefined) ?? parts[1]!.headers['content-type'] ?? 'application/octet-stream';
    const stored = this.commit(bucket, name, parts[1]!.body, { ...metadata, contentType }, query.ifGenerationMatch);
    this.answer(res, stored.resource);
  }

  /** The response of a request that created an object, unless it is to be dropped. */
  private answer(res: http.ServerResponse, body: unknown): void {
    if (this.dropResponses > 0) {
      this.dropResponses -= 1;
      res.socket?.destroy();
      return;
    }
    sendJson(res, 200, body);
  }

  private startSession(bucket: string, query: Record<string, string>, headers: http.IncomingHttpHeaders, body: Buffer, res: http.ServerResponse): void {
    const name = query.name;
    if (!name) throw new HttpError(400, 'required', 'Required parameter: name');
    // GCS checks preconditions when the session starts and again when it finalizes.
    this.checkGeneration(`${bucket}/${name}`, query.ifGenerationMatch);
    const id = randomBytes(12).toString('hex');
    this.sessions.set(id, {
      bucket,
      name,
      query,
      metadata: body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {},
      contentType: String(headers['x-upload-content-type'] ?? 'application/octet-stream'),
      received: [],
    });
    res.writeHead(200, { location: `${this.endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}` });
    res.end();
  }

  private putSession(query: Record<string, string>, headers: http.IncomingHttpHeaders, body: Buffer, res: http.ServerResponse): void {
    const session = this.sessions.get(query.upload_id ?? '');
    if (!session) throw new HttpError(404, 'notFound', 'No such upload session');
    session.received.push(body);
    const received = Buffer.concat(session.received);
    // `bytes a-*/…` streams the rest in this one request, so its end finishes the upload;
    // `bytes a-b/*` is a chunk with more to come; `bytes a-b/total` finishes once total is reached.
    const range = /^bytes (\d+|\*)-?(\d+|\*)?\/(\d+|\*)$/.exec(String(headers['content-range'] ?? ''));
    const total = range?.[2] === '*' ? (range[3] === '*' ? received.length : Number(range[3])) : Number(range?.[3]);
    if (total !== received.length) {
      res.writeHead(308, received.length ? { range: `bytes=0-${received.length - 1}` } : {});
      res.end();
      return;
    }
    this.sessions.delete(query.upload_id ?? '');
    const { metadata, contentType } = session;
    const stored = this.commit(session.bucket, session.name, received, { ...metadata, contentType }, session.query.ifGenerationMatch);
    this.answer(res, stored.resource);
  }

  private get(key: string, query: Record<string, string>, res: http.ServerResponse): void {
    const stored = this.live(key);
    if (query.generation !== undefined && query.generation !== stored.resource.generation) {
      throw new HttpError(404, 'notFound', `No such object: ${key}#${query.generation}`);
    }
    if (query.alt !== 'media') return sendJson(res, 200, stored.resource);
    res.writeHead(200, {
      'content-type': String(stored.resource.contentType),
      'content-length': stored.bytes.length,
      'x-goog-hash': `crc32c=${stored.resource.crc32c},md5=${stored.resource.md5Hash}`,
      'x-goog-generation': String(stored.resource.generation),
      'x-goog-stored-content-encoding': 'identity',
    });
    res.end(stored.bytes);
  }

  private list(bucket: string, query: Record<string, string>, res: http.ServerResponse): void {
    const prefix = `${bucket}/${query.prefix ?? ''}`;
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    const start = query.pageToken ? keys.findIndex((k) => k > Buffer.from(query.pageToken as string, 'base64url').toString()) : 0;
    const size = Math.min(this.pageSize, Number(query.maxResults ?? this.pageSize));
    const page = start < 0 ? [] : keys.slice(start, start + size);
    const more = start >= 0 && start + size < keys.length;
    sendJson(res, 200, {
      kind: 'storage#objects',
      items: page.map((k) => this.objects.get(k)?.resource),
      ...(more ? { nextPageToken: Buffer.from(page[page.length - 1] as string).toString('base64url') } : {}),
    });
  }

  private rewrite(src: string, dst: string, query: Record<string, string>, body: Buffer, res: http.ServerResponse): void {
    const source = this.live(src);
    if (query.sourceGeneration !== undefined && query.sourceGeneration !== source.resource.generation) {
      throw new HttpError(404, 'notFound', `No such object: ${src}#${query.sourceGeneration}`);
    }
    if (query.ifSourceGenerationMatch !== undefined && query.ifSourceGenerationMatch !== source.resource.generation) {
      throw new HttpError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
    }
    const requested = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const [bucket, ...rest] = dst.split('/');
    const stored = this.commit(
      bucket as string,
      rest.join('/'),
      source.bytes,
      { contentType: source.resource.contentType, metadata: source.resource.metadata, ...requested },
      query.ifGenerationMatch,
    );
    this.answer(res, {
      kind: 'storage#rewriteResponse',
      totalBytesRewritten: String(stored.bytes.length),
      objectSize: String(stored.bytes.length),
      done: true,
      resource: stored.resource,
    });
  }

  private delete(key: string, query: Record<string, string>, res: http.ServerResponse): void {
    this.live(key);
    this.checkGeneration(key, query.ifGenerationMatch);
    this.objects.delete(key);
    res.writeHead(204);
    res.end();
  }

  private commit(bucket: string, name: string, bytes: Buffer, fields: Record<string, unknown>, ifGenerationMatch: string | undefined): StoredObject {
    const key = `${bucket}/${name}`;
    this.checkGeneration(key, ifGenerationMatch);
    this.generation += 1n;
    const now = new Date().toISOString();
    const generation = this.generation.toString();
    const stored: StoredObject = {
      bytes,
      resource: {
        kind: 'storage#object',
        id: `${key}/${generation}`,
        selfLink: `${this.endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`,
        mediaLink: `${this.endpoint}/download/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}?generation=${generation}&alt=media`,
        name,
        bucket,
        generation,
        metageneration: '1',
        contentType: fields.contentType ?? 'application/octet-stream',
        storageClass: 'STANDARD',
        size: String(bytes.length),
        md5Hash: createHash('md5').update(bytes).digest('base64'),
        crc32c: crc32c(bytes),
        etag: randomBytes(8).toString('base64'),
        timeCreated: now,
        updated: now,
        timeStorageClassUpdated: now,
        ...(fields.metadata ? { metadata: fields.metadata } : {}),
      },
    };
    this.objects.set(key, stored);
    this.onFinalize?.(bucket, name);
    return stored;
  }

  private checkGeneration(key: string, expected: string | undefined): void {
    if (expected === undefined) return;
    const actual = (this.objects.get(key)?.resource.generation as string | undefined) ?? '0';
    if (actual !== expected) throw new HttpError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }

  private live(key: string): StoredObject {
    const stored = this.objects.get(key);
    if (!stored) throw new HttpError(404, 'notFound', `No such object: ${key}`);
    return stored;
  }

  private key(bucket: string | undefined, name: string | undefined): string {
    return `${decodeURIComponent(bucket ?? '')}/${decodeURIComponent(name ?? '')}`;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
