/** Where the local gateway's keys come from: API_KEYS, the keys file, and the development key of a first run. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeys, parseKeyList, readKeysFile } from '../../functions/ops/api-keys.js';
import { keyToShow } from '../../functions/ops/gateway-access.js';
import { tempDir } from '../support/pipeline.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('API keys', () => {
  it('a first run creates one development key, private to the user, and shows the same one on every later run', async () => {
    dir = await tempDir();
    const keysFile = path.join(dir, 'api-keys.json');
    const first = await keyToShow({ enabled: true, keys: '', keysFile });
    expect(first).toMatchObject({ name: 'dev', key: expect.stringMatching(/^[\w-]{32}$/) });
    expect((await fs.stat(keysFile)).mode & 0o777).toBe(0o600);
    expect(await keyToShow({ enabled: true, keys: '', keysFile })).toEqual(first);
    expect(await readKeysFile(keysFile)).toEqual([first]);
  });

  it('API_KEYS wins and creates no file; AUTH=off shows no key', async () => {
    dir = await tempDir();
    const keysFile = path.join(dir, 'api-keys.json');
    expect(await keyToShow({ enabled: true, keys: 'ci:secret', keysFile })).toEqual({ name: 'ci', key: 'secret' });
    expect(await keyToShow({ enabled: false, keys: '', keysFile })).toBeUndefined();
    await expect(fs.stat(keysFile)).rejects.toThrow(/ENOENT/);
  });

  it('names a key by its value and knows no other; malformed settings are refused', async () => {
    const keys = new ApiKeys(parseKeyList(' alice:a-1 , bob:b:2 '));
    expect([keys.nameOf('a-1'), keys.nameOf('b:2'), keys.nameOf('a-2'), keys.nameOf('')]).toEqual(['alice', 'bob', undefined, undefined]);
    expect(() => parseKeyList('nokey')).toThrow(/name:key/);
    dir = await tempDir();
    const bad = path.join(dir, 'bad.json');
    await fs.writeFile(bad, '{"keys":[{"name":"x"}]}');
    await expect(readKeysFile(bad)).rejects.toThrow(/expected/);
  });
});
