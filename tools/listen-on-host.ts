/**
 * Preloaded (`node --import`) into a functions-framework process so it binds
 * FUNCTION_HOST instead of every interface: the CLI has no host option, its
 * main.js (5.0.5) calls `server.listen(port, callback)`. Only a listen that
 * names a port and no host is changed.
 */
import net from 'node:net';

const host = process.env.FUNCTION_HOST;
if (host) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const port = args[0];
    const portOnly = (typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) && (args.length === 1 || typeof args[1] === 'function');
    if (portOnly) args.splice(1, 0, host);
    return listen.apply(this, args as Parameters<typeof listen>);
  } as typeof listen;
}
