/** Raw HTTP for ingest tests: exact bytes on the wire (hand-built multipart, chunked bodies, aborted sockets). */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../../functions/core/ports.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface Part {
  field?: string;
  fileName?: string;
  contentType?: string;
  data: Buffer | string;
}

/** A multipart/form-data body built byte for byte, so file names may hold anything a hostile client sends. */
export function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = `----t${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.field ?? 'file'}"${p.fileName !== undefined ? `; filename="${p.fileName}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${p.contentType ?? 'text/csv'}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Sends `body` (with a Content-Length unless `chunked`) and reads the whole answer. */
export function send(url: string, body: Buffer | string, headers: Record<string, string> = {}, options: { chunked?: boolean; path?: string } = {}): Promise<Reply> {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${options.path ?? '/upload'}`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv', ...(options.chunked ? {} : { 'content-length': String(data.length) }), ...headers },
    });
    let answered = false;
    let failure: Error | undefined;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: parsed });
      });
    });
    // The server may answer and stop reading before the whole body is sent: the answer is what counts, if one came.
    req.on('error', (e) => (failure = e));
    req.on('close', () => answered || reject(failure ?? new Error('connection closed without an answer')));
    if (options.chunked) {
      for (let i = 0; i < data.length; i += 64 * 1024) req.write(data.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(data);
  });
}

export async function names(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.name);
  return out;
}
