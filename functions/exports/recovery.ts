/**
 * Exports a stopped process left `running` with nothing to run them: POST
 * /exports records the export, then queues it, and a process killed between
 * the two leaves a record no message will ever settle. Each such export is
 * queued again; one whose message did survive runs once all the same, as the
 * runner takes one message per export at a time and a second finds it settled.
 */
import { EXPORTS_PREFIX } from '../core/exports.js';
import type { Runtime } from '../runtime.js';

const RECORD = /^exports\/([^/]+)\.json$/;

/** Queues again every export still running that was created before `before`; returns their ids. */
export async function requeueRunningExports(rt: Runtime, before: Date): Promise<string[]> {
  const requeued: string[] = [];
  for await (const info of rt.store.list(EXPORTS_PREFIX)) {
    const exportId = RECORD.exec(info.name)?.[1];
    const record = exportId && (await rt.exports.get(exportId));
    if (!record || record.status !== 'running' || Date.parse(record.createdAt) >= before.getTime()) continue;
    await rt.bus.publish(rt.config.exports.topic, Buffer.from(JSON.stringify({ exportId })), { exportId });
    requeued.push(record.exportId);
  }
  return requeued;
}
