/**
 * Slow clients on real sockets: a body trickled a byte at a time, a chunked
 * body that never sends its last chunk, headers trickled a byte at a time.
 * Each is cut (408) so the upload slots go to clients that make progress.
 * The timeouts are configured small; nothing here measures time.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flightsCsv } from '../support/generate-flights.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { names, send } from './http.js';

let p: TestPipeline;
beforeAll(async () => {
  p = await startTestPipeline({
    env: { MAX_CONCURRENT_UPLOADS: '2', UPLOAD_STALL_MS: '1000', UPLOAD_MIN_BYTES_PER_SECOND: '1000', HEADERS_TIMEOUT_MS: '400' },
  });
});
afterAll(() => p.stop());

interface Slow {
  /** Everything the server sent, once it closed the connection or answered. */
  answer: Promise<string>;
  stop(): void;
}

/** Connects, sends `head` at once, then one byte of `drip` (if any) every 20 ms until the server answers or closes. */
function slowClient(head: string, drip: string): Slow {
  const { port, hostname } = new URL(p.url);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => undefined); // the server may reset a client it gave up on; the answer read so far is what counts
  let timer: NodeJS.Timeout | undefined;
  let sent = 0;
  socket.once('connect', () => {
    socket.write(head);
    if (drip) timer = setInterval(() => socket.writable && socket.write(drip[sent++ % drip.length]!), 20);
  });
  const answer = new Promise<string>((resolve) => {
    let text = '';
    const done = (): void => {
      clearInterval(timer);
      resolve(text);
    };
    socket.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('\r\n\r\n') && (text.includes('}') || !text.includes('problem+json'))) done();
    });
    socket.once('close', done);
  });
  return {
    answer,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

const uploadHead = (headers: string): string => `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n${headers}\r\n`;

describe('slow clients', () => {
  it('answers 408 to a body that trickles and to a chunked body left unfinished, freeing their slots', async () => {
    const csv = flightsCsv(200, 5);
    const clients = [
      slowClient(uploadHead(`Content-Length: ${csv.length}\r\n`), csv),
      slowClient(uploadHead('Transfer-Encoding: chunked\r\n') + `10\r\n${csv.slice(0, 16)}\r\n`, ''),
    ];
    try {
      const answers = await Promise.all(clients.map((c) => c.answer));
      for (const answer of answers) {
        expect(answer).toMatch(/^HTTP\/1\.1 408 /);
        expect(answer).toContain('/problems/too-slow');
      }
    } finally {
      for (const c of clients) c.stop();
    }
    expect(await names(p.rt.store, 'staging/')).toEqual([]);
    // Both slots are free again: two uploads at once are both taken.
    const replies = await Promise.all([send(p.url, flightsCsv(3_000, 6)), send(p.url, flightsCsv(3_000, 7))]);
    expect(replies.map((r) => r.status)).toEqual([201, 201]);
  });

  it('cuts a client that trickles its headers', async () => {
    const client = slowClient('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n');
    try {
      expect(await client.answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      client.stop();
    }
  });

  it('lets an upload that makes progress finish, however long it takes in all', async () => {
    // 1,000 bytes/s is required in every 1 s window; this client sends 64 KiB every 100 ms, over more than one window.
    const csv = Buffer.from(flightsCsv(12_000, 8));
    const reply = await new Promise<number>((resolve, reject) => {
      const { port, hostname } = new URL(p.url);
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(uploadHead(`Content-Length: ${csv.length}\r\n`));
        let at = 0;
        const timer = setInterval(() => {
          socket.write(csv.subarray(at, (at += 64 * 1024)));
          if (at >= csv.length) clearInterval(timer);
        }, 100);
      });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        const status = /^HTTP\/1\.1 (\d+)/.exec(text);
        if (status) {
          socket.destroy();
          resolve(Number(status[1]));
        }
      });
      socket.on('error', reject);
    });
    expect(reply).toBe(201);
  });
});
