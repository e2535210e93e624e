/**
 * Upload status records (`stored → loading → loaded | failed`), kept as small
 * JSON objects in the same bucket so ingest and loader share them in the
 * cloud as locally. Updates are compare-and-swap on the object generation.
 */
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from './ports.js';

export type UploadState = 'stored' | 'loading' | 'loaded' | 'failed';

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
  createdAt: string;
  updatedAt: string;
  loadedRows?: number;
  reason?: string;
}

export const UPLOADS_PREFIX = 'uploads/';

export class UploadLedger {
  constructor(private readonly store: ObjectStore) {}

  private name(uploadId: string): string {
    return `${UPLOADS_PREFIX}${uploadId}.json`;
  }

  async create(record: UploadRecord): Promise<void> {
    await this.store.write(this.name(record.uploadId), Readable.from([JSON.stringify(record)]), {
      contentType: 'application/json',
      ifGenerationMatch: '0',
    });
  }

  async get(uploadId: string): Promise<UploadRecord | undefined> {
    return (await this.read(uploadId))?.record;
  }

  /** Applies `change` to the current record, retrying when another writer got there first. */
  async update(uploadId: string, change: (current: UploadRecord) => Partial<UploadRecord>): Promise<UploadRecord | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.read(uploadId);
      if (!current) return undefined;
      const next = { ...current.record, ...change(current.record), updatedAt: new Date().toISOString() };
      try {
        await this.store.write(this.name(uploadId), Readable.from([JSON.stringify(next)]), {
          contentType: 'application/json',
          ifGenerationMatch: current.generation,
        });
        return next;
      } catch (e) {
        if (!(e instanceof PreconditionFailedError)) throw e;
      }
    }
    throw new Error(`upload ${uploadId}: too many concurrent updates`);
  }

  private async read(uploadId: string): Promise<{ record: UploadRecord; generation: string } | undefined> {
    for (let attempt = 0; ; attempt++) {
      const info = await this.store.stat(this.name(uploadId));
      if (!info) return undefined;
      try {
        const body = await text(this.store.read(this.name(uploadId), { generation: info.generation }));
        return { record: JSON.parse(body) as UploadRecord, generation: info.generation };
      } catch (e) {
        // Replaced between stat and read: read the new generation.
        if (!(e instanceof ObjectNotFoundError) || attempt >= 10) throw e;
      }
    }
  }
}
