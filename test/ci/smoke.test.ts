/**
 * ci/smoke against the local pipeline, as CI's laptop stand-in for the deployed
 * gateway: it passes on a working one and leaves exactly its three rows there,
 * and fails, naming the first difference, on a deliberately broken one.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { runScript } from './run-script.js';

let pipeline: TestPipeline;
let broken: http.Server;
let brokenUrl: string;

/** A gateway in front of the real one that loses the last row of every /getdata answer. */
function rowLosingProxy(upstream: string): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'content-length')) as Record<string, string>;
      const answer = await fetch(upstream + req.url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      let body = await answer.text();
      if (req.url?.startsWith('/getdata')) body = body.replace(/[^\n]*\r?\n$/, '');
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
      res.end(body);
    });
  });
}

const smoke = (args: string[]) => runScript('ci/smoke', args, { SMOKE_TIMEOUT_SECONDS: '60' });

beforeAll(async () => {
  pipeline = await startTestPipeline();
  broken = rowLosingProxy(pipeline.url);
  await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
  brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => broken?.close(resolve));
  await pipeline?.stop();
  if (pipeline) await fs.rm(pipeline.dataDir, { recursive: true, force: true });
});

describe('ci/smoke', () => {
  it('passes against a working pipeline, which then holds its three rows and no row of the bad file', async () => {
    const result = await smoke([pipeline.url]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`smoke passed against ${pipeline.url}`);
    const tail = /tail number (ZS[0-9A-F]{8})/.exec(result.stdout)![1];
    const rows = (await (await fetch(`${pipeline.url}/getdata?tailnum=eq.${tail}&select=flight,month&order=flight&limit=100`)).json()) as { rows: { flight: number; month: number }[] };
    expect(rows.rows).toHaveLength(3);
    expect(rows.rows.map((r) => [r.flight, r.month])).toEqual([
      [1141, 1],
      [1545, 1],
      [1714, 1],
    ]);
  });

  it('fails on a gateway that loses a row, naming the missing line', async () => {
    const result = await smoke([brokenUrl]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/GET \/getdata\?tailnum=eq\.ZS[0-9A-F]{8} line 4: expected '2013,1,1,533,529,UA,1714,ZS[0-9A-F]{8},LGA,IAH,5,29', got '<no line>'/);
  });

  it('with an API key, fails on a gateway that lets a call without it through', async () => {
    const result = await smoke([pipeline.url, 'k-123']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('GET /getdata without an API key: expected HTTP 401 403, got 200');
  });

  it('fails, saying so, when nothing answers', async () => {
    const result = await smoke(['http://127.0.0.1:1']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('POST /upload of 3 valid rows: no answer');
  });
});
