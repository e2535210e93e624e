/** Loopback port helpers for the tools that start servers, and for their tests. */
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Lowest port a free one is drawn from: clear of the well-known and registered ports most tools default to. */
const FIRST_PORT = 10_000;
const ATTEMPTS = 50;

/**
 * The kernel's ephemeral range (Linux; elsewhere none is known). Every outgoing connection and every
 * listen(0) takes its port from it, so a port probed there and let go can be taken by a test's client
 * socket before the server meant for it binds it (seen in CI: EADDRINUSE on a function's first start).
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low! > FIRST_PORT + ATTEMPTS && high! >= low! ? [low!, high!] : undefined;
  } catch {
    return undefined;
  }
}

const bound = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: taken } = server.address() as net.AddressInfo;
      server.close(() => resolve(taken));
    });
  });

/**
 * A port nothing listens on right now, below the ephemeral range where the kernel knows it, so only
 * another process picking a port the same way can take it before we do; else any free one.
 */
export async function freePort(): Promise<number> {
  const range = ephemeralRange();
  if (range) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = await bound(FIRST_PORT + Math.floor(Math.random() * (range[0] - FIRST_PORT)));
      if (port) return port;
    }
  }
  const port = await bound(0);
  if (!port) throw new Error('no free loopback port');
  return port;
}

/** Whether something accepts connections on `host`:`port`. */
export function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
