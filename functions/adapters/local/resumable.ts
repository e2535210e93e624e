/**
 * Resumable upload sessions for the local bucket, with GCS's XML-API
 * semantics: a session is started through a signed URL (the size, content
 * type and precondition it was signed with become the session's), the bytes
 * come in `Content-Range` chunks appended to a part file, a `bytes *\/N`
 * query reports what arrived, and the object is finalized in the store only
 * when the declared size is reached. Whatever arrived before a connection
 * broke is kept, so the client resumes from there. A finished session takes
 * no more bytes. A session whose last byte arrived but whose object was never
 * finalized (the process died in between) is finalized on the next request
 * that touches it, or by `recover()` at start-up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PreconditionFailedError, type ObjectInfo, type ObjectStore } from '../../core/ports.js';
import { Problem } from '../../core/problem.js';
import { KeyedQueue } from '../../core/keyed-queue.js';

/** As long as GCS keeps a session URI valid. */
export const SESSION_LIFETIME_MS = 7 * 24 * 3600 * 1000;

interface SessionState {
  id: string;
  name: string;
  contentType: string;
  /** Declared total, from X-Upload-Content-Length; the upload must be exactly this long. */
  size?: number;
  ifGenerationMatch?: string;
  createdAt: number;
  /** Set once the object is finalized. */
  object?: ObjectInfo;
}

export interface ChunkRange {
  /** First byte of this chunk; undefined for a status query (`bytes *\/N`). */
  start?: number;
  /** Total size if this request says it (`/N`); `*` leaves it open. */
  total?: number;
}

export type Progress = { done: false; received: number } | { done: true; object: ObjectInfo };

const SESSION_ID = /^[0-9a-f]{32}$/;

const problem = (status: number, slug: string, detail: string) => new Problem(status, slug, status === 410 ? 'Gone' : status === 404 ? 'Not Found' : 'Bad Request', detail);

/** Passes bytes through until `limit` would be exceeded, then fails the stream. */
function capped(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      seen += chunk.length;
      if (seen > limit) return done(problem(400, 'upload-too-large', `The upload is longer than the ${limit} more bytes its declared size allows.`));
      done(null, chunk);
    },
  });
}

export class ResumableSessions {
  /**
   * One request at a time per session: two writers appending to one part file
   * would interleave, and a status query must see what a broken request kept
   * once that request has finished failing.
   */
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly dir: string,
    private readonly store: ObjectStore,
  ) {}

  async start(name: string, options: { contentType: string; size?: number; ifGenerationMatch?: string }): Promise<string> {
    // GCS checks the precondition when the session starts, and again when it finalizes.
    await this.checkPrecondition(name, options.ifGenerationMatch);
    const id = randomBytes(16).toString('hex');
    await fs.mkdir(this.dir, { recursive: true });
    await fs.writeFile(this.partPath(id), '');
    await this.save({ id, name, createdAt: Date.now(), ...options });
    return id;
  }

  /** What has arrived; a finished session reports its object. */
  status(id: string): Promise<Progress> {
    return this.queue.run(id, () => this.statusNow(id));
  }

  append(id: string, range: Required<Pick<ChunkRange, 'start'>> & ChunkRange, body: Readable): Promise<Progress> {
    return this.queue.run(id, () => this.appendNow(id, range, body));
  }

  private async statusNow(id: string): Promise<Progress> {
    const state = await this.load(id);
    if (state.object) return { done: true, object: state.object };
    const received = await this.received(id);
    if (received === state.size) return { done: true, object: await this.finalize(state) };
    return { done: false, received };
  }

  /**
   * Finalizes every session that has all its bytes but no object (a crash after the last byte), and
   * removes the part file of a finished one (a crash between its save and the removal). Returns the ids finalized.
   */
  async recover(): Promise<string[]> {
    const files = await fs.readdir(this.dir).catch(() => [] as string[]);
    const recovered: string[] = [];
    for (const id of files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length))) {
      const state = await this.load(id).catch(() => undefined);
      if (state?.object) await fs.rm(this.partPath(id), { force: true });
      if (!state || state.object || state.size === undefined || (await this.received(id).catch(() => -1)) !== state.size) continue;
      await this.status(id);
      recovered.push(id);
    }
    return recovered;
  }

  /** Appends one chunk at `range.start`, and finalizes the object once the declared size is reached. */
  private async appendNow(id: string, range: { start: number; total?: number }, body: Readable): Promise<Progress> {
    const state = await this.load(id);
    if (state.object) throw problem(410, 'session-finished', 'This upload session has finished; it takes no more bytes. Ask the API for a new upload.');
    const received = await this.received(id);
    if (received === state.size) return { done: true, object: await this.finalize(state) };
    const total = range.total ?? state.size;
    if (state.size !== undefined && range.total !== undefined && range.total !== state.size) {
      throw problem(400, 'size-mismatch', `The upload was started for ${state.size} bytes, not ${range.total}.`);
    }
    if (range.start !== received) {
      throw problem(400, 'offset-mismatch', `This session has ${received} bytes; the next chunk must start there (query with Content-Range: bytes */${total ?? '*'}).`);
    }
    const room = total === undefined ? Number.MAX_SAFE_INTEGER : total - received;
    await pipeline(body, capped(room), createWriteStream(this.partPath(id), { flags: 'a' })).catch(async (e: unknown) => {
      // A broken connection keeps what arrived; bytes beyond the declared size are cut off again.
      if (e instanceof Problem) await fs.truncate(this.partPath(id), received);
      throw e;
    });
    const now = await this.received(id);
    if (total === undefined || now < total) return { done: false, received: now };
    return { done: true, object: await this.finalize(state) };
  }

  private async finalize(state: SessionState): Promise<ObjectInfo> {
    const part = this.partPath(state.id);
    const options = { contentType: state.contentType, ...(state.ifGenerationMatch !== undefined ? { ifGenerationMatch: state.ifGenerationMatch } : {}) };
    const object =
      (await this.finalizedBeforeCrash(state)) ??
      (await this.store.write(state.name, createReadStream(part), options).catch((e: unknown) => {
        if (e instanceof PreconditionFailedError) throw new Problem(412, 'precondition-failed', 'Precondition Failed', `${state.name} already exists; this upload cannot replace it.`);
        throw e;
      }));
    await this.save({ ...state, object });
    await fs.rm(part, { force: true });
    return object;
  }

  /**
   * The object this session wrote before the process died between the write and the session's own
   * save: same bytes (MD5), written after the session started. Writing it again would fail its
   * if-generation-match=0 precondition, or make a second generation.
   */
  private async finalizedBeforeCrash(state: SessionState): Promise<ObjectInfo | undefined> {
    const current = await this.store.stat(state.name);
    if (!current || Date.parse(current.timeCreated) < state.createdAt || current.size !== (await this.received(state.id))) return undefined;
    const md5 = createHash('md5');
    for await (const chunk of createReadStream(this.partPath(state.id))) md5.update(chunk as Buffer);
    return md5.digest('base64') === current.md5Hash ? current : undefined;
  }

  private async checkPrecondition(name: string, ifGenerationMatch: string | undefined): Promise<void> {
    if (ifGenerationMatch === undefined) return;
    const current = (await this.store.stat(name))?.generation ?? '0';
    if (current !== ifGenerationMatch) throw new Problem(412, 'precondition-failed', 'Precondition Failed', `${name} is at generation ${current}, not ${ifGenerationMatch}.`);
  }

  private async load(id: string): Promise<SessionState> {
    const missing = problem(404, 'no-such-session', 'No such upload session.');
    if (!SESSION_ID.test(id)) throw missing;
    const text = await fs.readFile(this.statePath(id), 'utf8').catch(() => undefined);
    if (text === undefined) throw missing;
    const state = JSON.parse(text) as SessionState;
    if (!state.object && Date.now() - state.createdAt > SESSION_LIFETIME_MS) throw problem(410, 'session-expired', 'This upload session has expired; ask the API for a new upload.');
    return state;
  }

  private async received(id: string): Promise<number> {
    return (await fs.stat(this.partPath(id))).size;
  }

  private async save(state: SessionState): Promise<void> {
    const tmp = `${this.statePath(state.id)}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(state));
    await fs.rename(tmp, this.statePath(state.id));
  }

  private statePath(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private partPath(id: string): string {
    return path.join(this.dir, `${id}.part`);
  }
}
