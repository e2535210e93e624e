/** The local gateway's HTTP server, with a bound on how long a client may take to send its headers. */
import http, { type RequestListener, type Server } from 'node:http';

/**
 * Node looks for connections past the headers timeout only every
 * `connectionsCheckingInterval` (30 s by default), so the interval follows the
 * timeout: a client trickling its headers is cut within 1.25 × the timeout.
 */
export function listenWithTimeouts(app: RequestListener, port: number, host: string, headersTimeoutMs: number): Promise<Server> {
  const server = http.createServer({ headersTimeout: headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.floor(headersTimeoutMs / 4)) }, app);
  return new Promise((resolve, reject) => {
    server.once('error', reject).listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
