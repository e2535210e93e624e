/** flights-cli as a user runs it: a child process against a started pipeline. */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/ports.js';
import { writeFlightsCsv } from '../support/flight-files.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { tempDir } from '../support/temp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'tools/flights-cli.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('flights-cli', () => {
  let p: TestPipeline;
  let dir: string;

  beforeAll(async () => {
    p = await startTestPipeline();
    dir = await tempDir('flights-cli-');
  });
  afterAll(() => p?.stop());

  it('answers --help, -h and --version', async () => {
    for (const flag of ['--help', '-h']) {
      const run = await cli([flag]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^usage: flights-cli upload FILE/);
      expect(run.stdout).toContain('--no-wait');
    }
    const version = await cli(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: 'flights-cli 0.1.0\n' });
  });

  it('says so in one line when the file is missing or the server is down', async () => {
    const missing = await cli(['upload', path.join(dir, 'nope.csv'), '--url', p.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`flights-cli: no such file: ${path.join(dir, 'nope.csv')}\n`);
    const file = path.join(dir, 'ok.csv');
    await writeFlightsCsv(file, 5, 1);
    const down = `http://127.0.0.1:${await freePort()}`;
    const refused = await cli(['upload', file, '--url', down]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`flights-cli: cannot reach the API at ${down} (ECONNREFUSED); is it running (npm start)? Set --url or FLIGHTS_URL to another address.\n`);
  });

  it('keeps the file name of an inline upload', async () => {
    const file = path.join(dir, 'july.csv');
    await writeFlightsCsv(file, 20, 31);
    const run = await cli(['upload', file, '--url', p.url]);
    expect(run.code).toBe(0);
    const status = await request(p.url).get(`/uploads/${run.stdout.trim()}`);
    expect(status.body).toMatchObject({ fileName: 'july.csv', rows: 20 });
  });

  it('waits for a signed upload to be validated, and fails with its faults when it is invalid', async () => {
    const file = path.join(dir, 'bad.csv');
    await writeFlightsCsv(file, 200, 5, (line, text) => (line === 7 ? text.replace(/,(\d+),/, ',soon,') : text));
    const run = await cli(['upload', file, '--url', p.url, '--inline-max', '1000']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/validating…\n/);
    expect(run.stderr).toMatch(/flights-cli: upload \S+ failed: .*\n {2}line 7, column \d+ \(\w+\): /);
    // Not a terminal: progress is whole lines, ending with the rate and "done".
    expect(run.stderr).toMatch(/^100% {2}\d+\.\d \/ \d+\.\d MB {2}\d+\.\d MB\/s {2}done$/m);
  });

  it('on Ctrl-C says how to resume, and resumes when run again', async () => {
    const file = path.join(dir, 'big.csv');
    await writeFlightsCsv(file, 400_000, 9);
    const child = spawn(process.execPath, ['--import', 'tsx', 'tools/flights-cli.ts', 'upload', file, '--url', p.url, '--inline-max', '1000', '--no-wait'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (interrupted || !/^0% /m.test(stderr)) return;
      interrupted = true;
      child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted; upload \S+ keeps what arrived; run the same command again to resume \(state in .*big\.csv\.upload\.json\)\n$/);
    const again = await cli(['upload', file, '--url', p.url, '--inline-max', '1000', '--no-wait']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/^resuming upload /);
  }, 120_000);

  it('sends the API key from --key or FLIGHTS_API_KEY where the gateway asks for one, and says so when it is missing', async () => {
    const guarded = await startTestPipeline({ env: { AUTH: 'on', API_KEYS: 'cli:cli-secret' } });
    try {
      const file = path.join(dir, 'keyed.csv');
      await writeFlightsCsv(file, 30, 12);
      const without = await cli(['upload', file, '--url', guarded.url], { FLIGHTS_API_KEY: '' });
      expect(without.code).toBe(1);
      expect(without.stderr).toMatch(/^flights-cli: POST \/upload: HTTP 401 /);
      const inline = await cli(['upload', file, '--url', guarded.url, '--key', 'cli-secret']);
      expect(inline.code).toBe(0);
      // The signed path: POST /uploads and the status polls carry the key; the storage URLs their own signature.
      const signed = await cli(['upload', file, '--url', guarded.url, '--inline-max', '100'], { FLIGHTS_API_KEY: 'cli-secret' });
      expect(signed.code).toBe(0);
      expect(signed.stderr).toMatch(/the same rows were uploaded before, as /);
    } finally {
      await guarded.stop();
    }
  });
});
