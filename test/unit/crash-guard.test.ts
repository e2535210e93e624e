/**
 * What the crash guard keeps once a request is over. Timers and promises made
 * while a request was handled carry its scope for as long as they live (a
 * keep-alive connection serves the next request): the scope must not hold the request
 * with them, or a busy server holds every recent upload, body buffers and all.
 */
import { AsyncResource } from 'node:async_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { guardRequest } from '../../functions/core/crash-guard.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Made out here: a closure made next to the request would share its variables, and hold it itself. */
const laterWork = (): NodeJS.Timeout => setTimeout(() => undefined, 60_000);

/** An upload's handler in short: guards itself, starts work that outlives it, and ends. */
function handleRequest(): { request: WeakRef<object>; pending: NodeJS.Timeout } {
  const body = { buffer: Buffer.alloc(1 << 20) };
  const close = guardRequest(() => void body.buffer.fill(0));
  const pending = laterWork();
  close();
  return { request: new WeakRef(body), pending };
}

it('lets go of a request once it is over, while work it started still waits', async () => {
  // Its own async context, as each connection has.
  const { request, pending } = new AsyncResource('request').runInAsyncScope(handleRequest);
  try {
    // A WeakRef's target is kept to the end of the task that made or read it: collect from later tasks.
    for (let i = 0; i < 5 && request.deref(); i++) {
      await new Promise((r) => setTimeout(r, 5));
      gc();
    }
    expect(request.deref()).toBeUndefined();
  } finally {
    clearTimeout(pending);
  }
});
