/**
 * Small JSON status records in the bucket, one object per id, shared by every
 * instance in the cloud as locally. Creation is if-generation-match=0 and
 * updates are compare-and-swap on the object generation, so concurrent
 * writers never lose each other's changes and nothing but the ObjectStore
 * port is needed.
 */
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from './ports.js';

export class JsonRecords<T extends object> {
  constructor(
    private readonly store: ObjectStore,
    /** Ends in '/': records are `<prefix><id>.json`. */
    private readonly prefix: string,
  ) {}

  name(id: string): string {
    return `${this.prefix}${id}.json`;
  }

  /** Throws PreconditionFailedError if the id is taken. */
  async create(id: string, value: T): Promise<void> {
    await this.write(id, value, '0');
  }

  async get(id: string): Promise<T | undefined> {
    return (await this.read(id))?.value;
  }

  /** Applies `change` to the current value, retrying when another writer got there first; undefined if there is no record. */
  async update(id: string, change: (current: T) => Partial<T>): Promise<T | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.read(id);
      if (!current) return undefined;
      const next = { ...current.value, ...change(current.value), updatedAt: new Date().toISOString() };
      try {
        await this.write(id, next, current.generation);
        return next;
      } catch (e) {
        if (!(e instanceof PreconditionFailedError)) throw e;
      }
    }
    throw new Error(`${this.name(id)}: too many concurrent updates`);
  }

  private async write(id: string, value: T, ifGenerationMatch: string): Promise<void> {
    await this.store.write(this.name(id), Readable.from([JSON.stringify(value)]), { contentType: 'application/json', ifGenerationMatch });
  }

  private async read(id: string): Promise<{ value: T; generation: string } | undefined> {
    for (let attempt = 0; ; attempt++) {
      const info = await this.store.stat(this.name(id));
      if (!info) return undefined;
      try {
        const body = await text(this.store.read(this.name(id), { generation: info.generation }));
        return { value: JSON.parse(body) as T, generation: info.generation };
      } catch (e) {
        // Replaced between stat and read: read the new generation.
        if (!(e instanceof ObjectNotFoundError) || attempt >= 10) throw e;
      }
    }
  }
}
