/**
 * Files announced by a notification but not yet loaded, as small marker
 * objects in the bucket. A marker is written with if-generation-match=0, so a
 * redelivered notification finds its marker already there and adds nothing;
 * markers outlive any function instance, so a crash loses no file. A marker's
 * fields are its body and, when they fit, its custom metadata too, which a
 * listing returns (GCS's objects.list as much as the local store): a flush then
 * reads no marker, where it read each one after listing it.
 */
import { hash } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { PreconditionFailedError, type ObjectStore, type WriteOptions } from '../core/ports.js';

export interface PendingFile {
  object: string;
  generation: string;
  uploadId?: string;
  /** The object's size, from its notification: batches are capped in bytes. */
  bytes?: number;
  /** Failed load attempts of this file on its own (see flush.ts). */
  failures: number;
  lastError?: string;
  /** Jobs with this file that the warehouse failed for its own trouble, charged nothing (see flush.ts); absent on older markers. */
  held?: number;
  /** Of those, jobs with this file alone: its back-off doubles with each. */
  heldAlone?: number;
  /** Held alone, it is not tried again before this time (ISO 8601): kept in the marker, so a restart keeps the back-off. */
  retryAt?: string;
}

export const PENDING_PREFIX = 'loader/pending/';

const markerName = (object: string, generation: string): string =>
  `${PENDING_PREFIX}${hash('sha256', `${object}#${generation}`, 'hex').slice(0, 32)}.json`;

/** The custom metadata key a marker's fields go under. */
const FIELDS_KEY = 'pendingFile';
/** GCS takes a custom metadata value of at most 4 KiB; a marker with a longer error message is read instead. */
const MAX_METADATA_VALUE_BYTES = 4096;

/**
 * A marker's body, and the write options that carry the same fields in its metadata when they fit.
 * No MD5: nothing compares a marker's bytes by it (a retried write that finds it there needs no more).
 */
function marker(file: PendingFile): { body: Buffer; options: WriteOptions } {
  const fields = JSON.stringify(file);
  const body = Buffer.from(fields);
  return { body, options: { contentType: 'application/json', md5: false, ...(body.length <= MAX_METADATA_VALUE_BYTES ? { metadata: { [FIELDS_KEY]: fields } } : {}) } };
}

export class PendingFiles {
  constructor(private readonly store: ObjectStore) {}

  /** True when this call added the file; false when it was already pending. */
  async add(file: Omit<PendingFile, 'failures'>): Promise<boolean> {
    const { body, options } = marker({ ...file, failures: 0 });
    try {
      await this.store.write(markerName(file.object, file.generation), body, { ...options, ifGenerationMatch: '0' });
      return true;
    } catch (e) {
      if (e instanceof PreconditionFailedError) return false;
      throw e;
    }
  }

  /** The oldest pending files first (marker generations grow with time), at most `limit`, due or not. */
  async list(limit: number): Promise<PendingFile[]> {
    return (await this.due(limit, Number.POSITIVE_INFINITY)).files;
  }

  /**
   * The oldest files due at `now` first, at most `limit`, and how many backing-off files were passed
   * over to find them: however many wait out a back-off, they take no place a due file could have.
   */
  async due(limit: number, now: number): Promise<{ files: PendingFile[]; waiting: number }> {
    const markers = [];
    for await (const info of this.store.list(PENDING_PREFIX)) markers.push(info);
    markers.sort((a, b) => (BigInt(a.generation) < BigInt(b.generation) ? -1 : 1));
    const files: PendingFile[] = [];
    let waiting = 0;
    for (const info of markers) {
      if (files.length >= limit) break;
      let file: PendingFile;
      try {
        // A marker without its fields in its metadata (written before they went there, or too long) is read.
        file = JSON.parse(info.metadata[FIELDS_KEY] ?? (await text(this.store.read(info.name, { generation: info.generation })))) as PendingFile;
      } catch {
        // Removed or rewritten since the listing: another flush has it.
        continue;
      }
      if (file.retryAt && Date.parse(file.retryAt) > now) waiting += 1;
      else files.push(file);
    }
    return { files, waiting };
  }

  async recordFailure(file: PendingFile, error: string): Promise<PendingFile> {
    return this.rewrite({ ...file, failures: file.failures + 1, lastError: error });
  }

  /** `retryAt`: the file was held alone, and waits until then. */
  async recordHeld(file: PendingFile, error: string, retryAt?: Date): Promise<PendingFile> {
    const alone = retryAt ? { heldAlone: (file.heldAlone ?? 0) + 1, retryAt: retryAt.toISOString() } : {};
    return this.rewrite({ ...file, held: (file.held ?? 0) + 1, lastError: error, ...alone });
  }

  private async rewrite(next: PendingFile): Promise<PendingFile> {
    const { body, options } = marker(next);
    await this.store.write(markerName(next.object, next.generation), body, options);
    return next;
  }

  async remove(file: Pick<PendingFile, 'object' | 'generation'>): Promise<void> {
    await this.store.delete(markerName(file.object, file.generation)).catch(() => undefined);
  }
}
