/** One real Pub/Sub emulator for the whole run; tests that need it `inject('pubsubEmulatorHost')`. */
import type { TestProject } from 'vitest/node';
import { startPubSubEmulator } from '../../tools/pubsub-emulator.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pubsubEmulatorHost: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulator = await startPubSubEmulator();
  project.provide('pubsubEmulatorHost', emulator.host);
  return emulator.stop;
}
