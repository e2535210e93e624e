/** The local gateway's access settings from the configuration: the keys it accepts, or AUTH=off said out loud. */
import type { AuthSettings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { GatewayOptions } from '../local/gateway.js';
import { ApiKeys, createDevelopmentKey, parseKeyList, readKeysFile, type ApiKey } from './api-keys.js';

/**
 * The key to show at start: on the first run without keys a development key
 * is created in the keys file; otherwise the first configured one.
 */
export async function keyToShow(auth: AuthSettings): Promise<ApiKey | undefined> {
  if (!auth.enabled) return undefined;
  const configured = parseKeyList(auth.keys);
  if (configured.length) return configured[0];
  return (await createDevelopmentKey(auth.keysFile)) ?? (await readKeysFile(auth.keysFile))[0];
}

export async function gatewayAccess(auth: AuthSettings, log: Logger): Promise<NonNullable<GatewayOptions['access']>> {
  if (!auth.enabled) {
    log.warn('AUTH=off: the gateway checks no API key or token; anyone who can reach this port can upload and read everything');
    return { enabled: false, keys: new ApiKeys([]), log };
  }
  const keys = new ApiKeys([...parseKeyList(auth.keys), ...(await readKeysFile(auth.keysFile))]);
  if (keys.size === 0) log.warn({ keysFile: auth.keysFile }, 'no API keys configured: every operation that needs a key will answer 401');
  return { enabled: true, keys, log };
}
