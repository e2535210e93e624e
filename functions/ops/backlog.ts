/** Sets the bus backlog gauges from what each subscription of the topology holds right now. */
import type { Config } from '../core/config.js';
import type { EventBus } from '../core/ports.js';
import { topology } from '../core/topology.js';
import { metrics } from './metrics.js';

/** The subscription that keeps dead letters for an operator: its backlog is the dead-letter backlog. */
export const deadLetterSubscription = (config: Config): string => topology(config).retained[0]!.name;

export async function refreshBacklog(config: Config, bus: EventBus, now = Date.now()): Promise<void> {
  if (!bus.backlog) return;
  const wiring = topology(config);
  for (const { name } of [...wiring.subscriptions, ...wiring.retained]) {
    const { messages, oldestPublishMs } = await bus.backlog(name);
    metrics.backlog.set({ subscription: name }, messages);
    metrics.oldestAge.set({ subscription: name }, oldestPublishMs === undefined ? 0 : Math.max(0, (now - oldestPublishMs) / 1000));
  }
}
