/**
 * The API keys the local gateway accepts, as API Gateway accepts the keys of
 * its project: from API_KEYS (`name:key,name:key`) or a keys file kept
 * outside the repository (DATA_DIR/api-keys.json by default). `npm start`
 * creates a development key there on first run.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { readFileIfExists } from '../adapters/local/small-files.js';

export interface ApiKey {
  name: string;
  key: string;
}

interface KeysFile {
  keys: ApiKey[];
}

const digest = (key: string): string => createHash('sha256').update(key).digest('hex');

export class ApiKeys {
  /** By digest, so a lookup costs the same for every key. */
  private readonly byDigest = new Map<string, string>();

  constructor(keys: readonly ApiKey[]) {
    for (const { name, key } of keys) this.byDigest.set(digest(key), name);
  }

  /** The key's name, or undefined for a key nobody issued. */
  nameOf(key: string): string | undefined {
    return this.byDigest.get(digest(key));
  }

  get size(): number {
    return this.byDigest.size;
  }
}

/** `API_KEYS=ci:abc,alice:def`. */
export function parseKeyList(list: string): ApiKey[] {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf(':');
      if (at <= 0 || at === entry.length - 1) throw new Error(`API_KEYS entries are name:key, got ${JSON.stringify(entry)}`);
      return { name: entry.slice(0, at), key: entry.slice(at + 1) };
    });
}

export async function readKeysFile(file: string): Promise<ApiKey[]> {
  const text = readFileIfExists(file)?.toString('utf8');
  if (text === undefined) return [];
  const parsed = JSON.parse(text) as Partial<KeysFile>;
  if (!Array.isArray(parsed.keys) || !parsed.keys.every((k) => typeof k?.name === 'string' && typeof k?.key === 'string' && k.key.length > 0)) {
    throw new Error(`${file}: expected {"keys":[{"name":"…","key":"…"}]}`);
  }
  return parsed.keys;
}

export const newKey = (): string => randomBytes(24).toString('base64url');

/** Creates the keys file with one key named `name` unless it exists; returns that key, or undefined if the file was already there. */
export async function createDevelopmentKey(file: string, name = 'dev'): Promise<ApiKey | undefined> {
  const key = { name, key: newKey() };
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(file, `${JSON.stringify({ keys: [key] } satisfies KeysFile, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
}
