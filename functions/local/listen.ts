/** The local gateway's HTTP server, with a bound on how long a client may take to send its headers. */
import http, { IncomingMessage, ServerResponse, type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';

/**
 * Requests and responses made with the Express app's own prototypes. Express gives each request and
 * response its app's prototypes with `Object.setPrototypeOf`; on an object V8 has already shaped,
 * that leaves every later property access through Node's HTTP and stream code slower (a third of
 * the gateway's CPU for a small POST, docs/benchmarks.md). Born with them, there is nothing left
 * to change. Node's constructors are plain functions: called on the new object, they set it up as
 * `new` would (`Reflect.construct` with another new.target measured slower than the swap).
 */
function appPrototypes(app: Express): Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'> {
  function GatewayRequest(this: IncomingMessage, socket: Socket): void {
    Reflect.apply(IncomingMessage, this, [socket]);
  }
  GatewayRequest.prototype = app.request;
  function GatewayResponse(this: ServerResponse, req: IncomingMessage, options: object): void {
    Reflect.apply(ServerResponse, this, [req, options]);
  }
  GatewayResponse.prototype = app.response;
  return { IncomingMessage: GatewayRequest as unknown as typeof IncomingMessage, ServerResponse: GatewayResponse as unknown as typeof ServerResponse };
}

/**
 * Node looks for connections past the headers timeout only every
 * `connectionsCheckingInterval` (30 s by default), so the interval follows the
 * timeout: a client trickling its headers is cut within 1.25 × the timeout.
 */
export function listenWithTimeouts(app: Express, port: number, host: string, headersTimeoutMs: number): Promise<Server> {
  const options: ServerOptions = { headersTimeout: headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.floor(headersTimeoutMs / 4)), ...appPrototypes(app) };
  const server = http.createServer(options, app as RequestListener);
  return new Promise((resolve, reject) => {
    server.once('error', reject).listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
