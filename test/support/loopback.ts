/** A loopback HTTP server for the REST fakes: bodies arrive whole, port 0 picks a free port. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type BodyHandler = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void;

export async function listenLoopback(handle: BodyHandler): Promise<{ server: http.Server; endpoint: string }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function closeLoopback(server: http.Server | undefined): Promise<void> {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
}
