/**
 * The process-level safety net: an exception nobody caught (an 'error' event
 * without a listener, a throw in a callback) while a request is being handled
 * fails that request, not the process. Node keeps an async context through
 * callbacks, so the listener can tell whose exception it is; one outside any
 * open request still ends the process, as it would without the net.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';

interface Scope {
  /** Unset once the request is over. */
  fail: ((e: Error) => void) | undefined;
}

const requests = new AsyncLocalStorage<Scope>();

/**
 * Makes `fail` where an uncaught exception goes from here on: in the rest of
 * this request's handler and in every callback of its connection, which is
 * where its body's stream events run. Call it in the handler's synchronous
 * part, before any await: only there is the connection's context the current
 * one. Returns the function that closes the guard when the request is over.
 */
export function guardRequest(fail: (e: Error) => void): () => void {
  const scope: Scope = { fail };
  requests.enterWith(scope);
  // The scope outlives the request in every timer and promise made under it (the connection's next
  // request, work the handler left running; bus deliveries are kept out of it): holding `fail` there would
  // hold the whole request, its body's buffers included, for as long (tens of MB under load, see docs/benchmarks.md).
  return () => {
    scope.fail = undefined;
  };
}

let installed = false;

/** Installs the net once per process; only an entry point that owns the process (npm start) should. */
export function installCrashGuard(log: Logger): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', (error, origin) => {
    const fail = requests.getStore()?.fail;
    if (!fail) {
      log.fatal({ err: error, origin }, 'uncaught exception outside any request; exiting');
      process.exit(1);
    }
    log.error({ err: error, origin }, 'uncaught exception while handling a request; that request fails, the process goes on');
    fail(error);
  });
}
