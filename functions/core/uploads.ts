/**
 * Upload status records (`stored → loading → loaded | failed`) and the
 * idempotency index, kept as small JSON objects in the same bucket so every
 * instance shares them in the cloud as locally. Updates are compare-and-swap
 * on the object generation, so they need nothing but the ObjectStore port.
 */
import { hash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from './ports.js';
import { processStart } from './process-start.js';
import type { IngestLimits } from './config.js';
import { JsonRecords, readJson, writeJson } from './records.js';

/** `duplicate`: the same content was stored by an earlier upload (`duplicateOf`), so nothing was stored or loaded again. */
export type UploadState = 'stored' | 'loading' | 'loaded' | 'failed' | 'duplicate';

export interface UploadRecord {
  uploadId: string;
  status: UploadState;
  object: string;
  /** Set once the loader has seen the object. */
  generation?: string;
  bytes: number;
  rows: number;
  sha256: string;
  fileName?: string;
  /** Who uploaded, as the gateway vouched for it (ingest/identity.ts). */
  uploader?: string;
  /** The file's type as the client sent it (`text/csv`, `application/gzip`, …). */
  contentType?: string;
  createdAt: string;
  updatedAt: string;
  /** Signed uploads: until when their URL could start a session (their `createdAt` is when it was issued). */
  uploadUrlExpiresAt?: string;
  loadedRows?: number;
  reason?: string;
  /** A duplicate's first upload, whose rows these are. */
  duplicateOf?: string;
}

/** What GET /uploads/{id} and a duplicate's answer show: a duplicate also carries its first upload's current status. */
export type UploadView = UploadRecord & { duplicateOfStatus?: UploadState };

export async function uploadView(ledger: UploadLedger, record: UploadRecord): Promise<UploadView> {
  if (record.status !== 'duplicate' || !record.duplicateOf) return record;
  const first = await ledger.get(record.duplicateOf);
  return first ? { ...record, duplicateOfStatus: first.status } : record;
}

export const UPLOADS_PREFIX = 'uploads/';

/** Upload status records, `uploads/<uploadId>.json`. */
export type UploadLedger = JsonRecords<UploadRecord>;
export const uploadLedger = (store: ObjectStore): UploadLedger => new JsonRecords<UploadRecord>(store, UPLOADS_PREFIX);

export const IDEMPOTENCY_PREFIX = 'idempotency/';

/**
 * `key`: a client's Idempotency-Key; `canonical`: a file's content, as the SHA-256 of its canonical CSV
 * (so CRLF line ends, another column order or gzip make no new file); `sha256`: the client's bytes (older entries).
 */
export type IdempotencyKind = 'key' | 'canonical' | 'sha256';

export interface IdempotencyEntry<T> {
  /** Who claimed it: the upload (request) id. */
  owner: string;
  /** The process that claimed it (PROCESS_INSTANCE), so a restart can tell its dead predecessor's claims. */
  holder?: string;
  claimedAt: string;
  /** Absent while the owner is still working. */
  result?: T;
}

/**
 * This process: host, pid, a random tag and, where /proc tells it, its start
 * (process-start.ts), so a claim names the process that holds
 * it even when a restarted process gets the same pid (a container's 1) or a
 * later process is given the dead holder's pid.
 */
export const PROCESS_INSTANCE = [os.hostname(), process.pid, randomBytes(4).toString('hex'), processStart(process.pid)].filter((part) => part !== undefined).join('/');

/**
 * Whether the process that took a claim is certainly gone: it ran on this host
 * and its pid is no longer alive, or is now another process's (its start is not
 * the one the claim recorded), or is this process's pid under another tag (this
 * process has just started). A holder without a start (written without /proc,
 * or before starts were recorded) or whose start cannot be read now is judged
 * by its pid alone. A holder on another host is never judged here: its lease
 * expires instead.
 */
export function holderIsGone(holder: string | undefined, self = PROCESS_INSTANCE): boolean {
  if (!holder) return true;
  const [host, pid, , start] = holder.split('/');
  const [myHost, myPid] = self.split('/');
  if (host !== myHost || holder === self) return false;
  if (pid === myPid) return true;
  try {
    process.kill(Number(pid), 0);
  } catch (e) {
    const { code } = e as NodeJS.ErrnoException;
    // EPERM: it exists but belongs to someone else.
    if (code !== 'EPERM') return code === 'ESRCH';
  }
  if (!start) return false;
  const now = processStart(Number(pid));
  // Unreadable now (hidepid, or exiting just now): the pid alone says, and it says alive.
  return now !== undefined && now !== start;
}

export type Claim<T> =
  | { won: true; generation: string; entry: IdempotencyEntry<T> }
  /** Someone else holds it: their entry, finished or not. */
  | { won: false; entry: IdempotencyEntry<T> };

/**
 * First writer wins: a claim is an object created with if-generation-match=0,
 * so two racing uploads of the same key or content agree on one owner, on GCS
 * as on the local store. A finished entry holds for the window; an unfinished
 * one is a lease that holds for `leaseMs` only (the upload timeout), so a
 * claim whose owner crashed stops refusing retries. Either is taken over with
 * a compare-and-swap on its generation.
 */
export class IdempotencyIndex<T> {
  constructor(
    private readonly store: ObjectStore,
    private readonly windowMs: number,
    private readonly leaseMs: number,
  ) {}

  /** Whether `entry` still binds a claimant at `now`. */
  private holds(entry: IdempotencyEntry<T>, now: Date): boolean {
    const age = now.getTime() - Date.parse(entry.claimedAt);
    return age < (entry.result === undefined ? this.leaseMs : this.windowMs);
  }

  /** The id is hashed so any client key is a safe object name. */
  private name(kind: IdempotencyKind, id: string): string {
    const hashed = kind === 'key' ? hash('sha256', id, 'hex') : id;
    return `${IDEMPOTENCY_PREFIX}${kind}/${hashed}.json`;
  }

  async claim(kind: IdempotencyKind, id: string, owner: string, now = new Date()): Promise<Claim<T>> {
    const name = this.name(kind, id);
    const entry: IdempotencyEntry<T> = { owner, holder: PROCESS_INSTANCE, claimedAt: now.toISOString() };
    // Most keys and contents are new: try to create the entry first and read it only when that fails,
    // which saves a request per upload. Only a write under a precondition ever wins, as before.
    let expected = '0';
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return { won: true, entry, generation: await writeJson(this.store, name, entry, expected) };
      } catch (e) {
        if (!(e instanceof PreconditionFailedError)) throw e;
      }
      const current = await readJson<IdempotencyEntry<T>>(this.store, name);
      if (current && this.holds(current.value, now)) return { won: false, entry: current.value };
      expected = current?.generation ?? '0';
    }
    throw new Error(`${name}: too many concurrent claims`);
  }

  /** Records the owner's result, so later claimants replay it. */
  async complete(kind: IdempotencyKind, id: string, claim: { generation: string; entry: IdempotencyEntry<T> }, result: T): Promise<void> {
    await writeJson(this.store, this.name(kind, id), { ...claim.entry, result }, claim.generation);
  }

  /** Gives a claim up (the upload failed), so a retry is not answered with a result that never was. */
  async release(kind: IdempotencyKind, id: string, claim: { generation: string }): Promise<void> {
    await this.store.delete(this.name(kind, id), { ifGenerationMatch: claim.generation }).catch((e: unknown) => {
      if (!(e instanceof PreconditionFailedError || e instanceof ObjectNotFoundError)) throw e;
    });
  }
}

/** An index whose finished entries hold for the idempotency window and whose unfinished claims are leases of one upload timeout. */
export const idempotencyIndex = <T>(store: ObjectStore, limits: Pick<IngestLimits, 'idempotencyWindowMs' | 'requestTimeoutMs'>): IdempotencyIndex<T> =>
  new IdempotencyIndex<T>(store, limits.idempotencyWindowMs, limits.requestTimeoutMs);
