/**
 * A gateway route that forwards to a function served by another process (a
 * functions-framework server), as API Gateway forwards to an operation's
 * x-google-backend: same method, path, query string and headers. The request
 * body streams through unread, so uploads are never held in the gateway, and
 * the function's response streams back as it is produced.
 */
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { sendProblem } from '../core/http.js';
import { Problem } from '../core/problem.js';
import type { HttpHandler } from './gateway.js';

export function proxyTo(origin: string): HttpHandler {
  const target = new URL(origin);
  return (req, res) =>
    new Promise<void>((resolve) => {
      const upstream = http.request({
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.originalUrl,
        headers: req.headers,
      });
      const fail = (e: Error) => {
        // Before the function answered: the gateway's own error; after: all we can do is cut the response short.
        sendProblem(res, new Problem(502, 'bad-gateway', 'Bad Gateway', `The function at ${origin} did not answer: ${e.message}`));
        resolve();
      };
      upstream.on('response', (response) => {
        res.writeHead(response.statusCode ?? 502, response.statusMessage, response.headers);
        pipeline(response, res).then(resolve, fail);
      });
      upstream.on('error', fail);
      // A client that goes away aborts the forwarded request too.
      pipeline(req, upstream).catch(fail);
    });
}
