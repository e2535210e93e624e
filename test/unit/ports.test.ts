import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, isListening } from '../../tools/ports.js';

const range = fs.existsSync('/proc/sys/net/ipv4/ip_local_port_range')
  ? fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
  : undefined;

describe('freePort', () => {
  it.runIf(range)('draws below the ephemeral range, where no client socket or listen(0) can take the port before the server binds it', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) expect(port).toBeLessThan(range![0]!);
    expect(new Set(ports).size).toBeGreaterThan(1);
  });

  it('gives a port a server can then listen on', async () => {
    const port = await freePort();
    expect(await isListening(port)).toBe(false);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    expect(await isListening(port)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
  });
});
