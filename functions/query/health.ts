/**
 * GET /health: liveness is that it answers at all; readiness is that the
 * three ports answer: the store (a metadata read of an absent object), the
 * bus (the notification topic exists) and the warehouse (a query-free call).
 * Each check is bounded, so a hung dependency makes the answer 503, not a timeout.
 */
import type { Runtime } from '../runtime.js';

export const HEALTH_CHECK_TIMEOUT_MS = 2000;

export type CheckResult = { status: 'ok' } | { status: 'failing'; error: string };

export interface Health {
  status: 'ok' | 'failing';
  checks: Record<'store' | 'bus' | 'warehouse', CheckResult>;
}

async function check(probe: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([probe(), timeout]);
    return { status: 'ok' };
  } catch (e) {
    return { status: 'failing', error: e instanceof Error ? e.message : String(e) };
  } finally {
    clearTimeout(timer);
  }
}

export async function health(rt: Pick<Runtime, 'store' | 'bus' | 'warehouse' | 'config'>, timeoutMs = HEALTH_CHECK_TIMEOUT_MS): Promise<Health> {
  const [store, bus, warehouse] = await Promise.all([
    check(() => rt.store.stat('health/probe'), timeoutMs),
    check(() => rt.bus.ping(rt.config.notificationTopic), timeoutMs),
    check(() => rt.warehouse.ping(), timeoutMs),
  ]);
  const checks = { store, bus, warehouse };
  return { status: Object.values(checks).every((c) => c.status === 'ok') ? 'ok' : 'failing', checks };
}
