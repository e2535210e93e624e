/**
 * Small JSON status records in the bucket, one object per id, shared by every
 * instance in the cloud as locally. Creation is if-generation-match=0 and
 * updates are compare-and-swap on the object generation, so concurrent
 * writers never lose each other's changes and nothing but the ObjectStore
 * port is needed.
 */
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from './ports.js';

export interface Versioned<T> {
  value: T;
  generation: string;
}

export async function readJson<T>(store: ObjectStore, name: string): Promise<Versioned<T> | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      const found = await store.readSmall(name);
      return found && { value: JSON.parse(found.bytes.toString('utf8')) as T, generation: found.info.generation };
    } catch (e) {
      // Replaced or deleted between stat and read: look again, so a racing update is never taken for a missing record.
      if (!(e instanceof ObjectNotFoundError) || attempt >= 10) throw e;
    }
  }
}

/** Writes only if the object is still at `ifGenerationMatch` ('0': absent); throws PreconditionFailedError otherwise. */
export async function writeJson(store: ObjectStore, name: string, value: unknown, ifGenerationMatch: string): Promise<string> {
  // No MD5: nothing compares a record's bytes by it (GCS's read-back of a 412 uses the hash GCS computes itself).
  const info = await store.write(name, Buffer.from(JSON.stringify(value)), { contentType: 'application/json', ifGenerationMatch, md5: false });
  return info.generation;
}

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
    return (await this.amend(id, change))?.value;
  }

  /** update, giving the generation written too, for a writer that may later `replace` it. */
  async amend(id: string, change: (current: T) => Partial<T>): Promise<Versioned<T> | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.read(id);
      if (!current) return undefined;
      const next = await this.replace(id, current, change(current.value));
      if (next) return next;
    }
    throw new Error(`${this.name(id)}: too many concurrent updates`);
  }

  /** `change` over `known`, written only if the record is still at `known`'s generation; undefined if another writer got there first. */
  async replace(id: string, known: Versioned<T>, change: Partial<T>): Promise<Versioned<T> | undefined> {
    const value = { ...known.value, ...change, updatedAt: new Date().toISOString() };
    try {
      return { value, generation: await writeJson(this.store, this.name(id), value, known.generation) };
    } catch (e) {
      if (e instanceof PreconditionFailedError) return undefined;
      throw e;
    }
  }

  private async write(id: string, value: T, ifGenerationMatch: string): Promise<void> {
    await writeJson(this.store, this.name(id), value, ifGenerationMatch);
  }

  private read(id: string): Promise<Versioned<T> | undefined> {
    return readJson<T>(this.store, this.name(id));
  }
}
