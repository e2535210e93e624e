/**
 * What can stop `npm start` before it serves, said in words a user can act on
 * instead of a stack trace: a port already taken, or a data directory that
 * another instance is using (DuckDB would refuse its file with a lock error).
 */
import path from 'node:path';
import type { Config } from '../core/config.js';
import { tryFileLock } from '../adapters/local/file-lock.js';

export class StartupError extends Error {}

export const INSTANCE_LOCK = 'instance.lock';

/** Holds DATA_DIR for this process until `release`; refuses while another live process holds it. */
export async function claimDataDir(config: Config): Promise<() => Promise<void>> {
  // Processes started by `npm run start:emulators` share the directory on purpose.
  if (config.sharedDataDir) return async () => undefined;
  const lock = await tryFileLock(path.join(config.dataDir, INSTANCE_LOCK));
  if ('heldBy' in lock) {
    throw new StartupError(`another instance (PID ${lock.heldBy}) holds the data directory ${config.dataDir}; stop it, or set DATA_DIR to another directory`);
  }
  return lock.release;
}

/** The message for an error from listening on the gateway's port, if it is one a user can fix. */
export function listenFailure(error: unknown, config: Config): StartupError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return new StartupError(`port ${config.port} is in use; set PORT to another port (PORT=0 picks a free one)`);
  if (code === 'EACCES') return new StartupError(`port ${config.port} needs privileges this process does not have; set PORT to a port above 1023`);
  if (code === 'EADDRNOTAVAIL') return new StartupError(`${config.host} is not an address of this machine; set HOST`);
  return undefined;
}
