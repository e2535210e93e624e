/**
 * Temporary directories for tests, each removed when its test file ends
 * (test/support/cleanup.ts), so a run leaves nothing in the system's temp directory.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];

export async function tempDir(prefix = 'flights-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of created.splice(0)) await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
