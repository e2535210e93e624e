/**
 * `npm run dlq:redrive`: once the cause is fixed, republishes the bucket
 * notifications kept on the dead-letter topic's retained subscription to the
 * notification topic, without the attributes Pub/Sub added when it gave up,
 * so the loader sees them as new. The loader's own quarantine reports
 * (`source=loader`) are not notifications: they stay for an operator. Stops
 * once nothing has arrived for a second.
 */
import { loadConfig } from '../functions/core/config.js';
import type { BusMessage } from '../functions/core/ports.js';
import { topology } from '../functions/core/topology.js';
import { createBus } from '../functions/runtime.js';
import { createLogger } from '../functions/core/logger.js';

const ADDED_BY_DEAD_LETTERING = /^CloudPubSubDeadLetter/;

export const originalAttributes = (attributes: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(attributes).filter(([k]) => !ADDED_BY_DEAD_LETTERING.test(k)));

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const bus = await createBus(config, log);
  const retained = topology(config).retained[0]!;
  let redriven = 0;
  let lastActivity = Date.now();
  const subscription = await bus.subscribe(retained, async (message: BusMessage) => {
    lastActivity = Date.now();
    if (message.attributes.source === 'loader') throw new Error('a quarantine report: kept for an operator');
    await bus.publish(config.notificationTopic, message.data, originalAttributes(message.attributes));
    redriven++;
  });
  while (Date.now() - lastActivity < 1000) await new Promise((r) => setTimeout(r, 200));
  await subscription.close();
  await bus.close();
  console.log(`redrove ${redriven} dead-lettered notifications to ${config.notificationTopic}`);
}
