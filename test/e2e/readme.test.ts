/**
 * The README's shell examples, run as written against a started pipeline, so
 * the README cannot drift from what the API does. Every `curl` (and `printf |
 * curl`, and `name=$(…)`) line of every ```sh block runs in bash, in order, in
 * a directory holding `samples/` and a `big.csv`; only what a reader would
 * fill in by hand is substituted: the address, `<uploadId>`, `<exportId>` and
 * `<url>` from earlier answers, `$url` / `$session` as the text tells the
 * reader to set them, and `$KEY` (an API key, for examples that send one).
 * A `# NNN …` comment right after a command is the status it must answer.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { tempDir } from '../support/temp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README_URL = 'http://127.0.0.1:8080';
const RUNNABLE = /^(curl|printf|[a-z]+=\$\()/;

interface Example {
  command: string;
  /** From a `# NNN` comment on the next line. */
  status?: number;
}

/** Commands of the README's sh blocks, continuation lines joined. */
function readmeExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block[1]!.replace(/\\\n\s*/g, '').split('\n');
    lines.forEach((line, i) => {
      if (!RUNNABLE.test(line)) return;
      const status = /^# (\d{3})\b/.exec(lines[i + 1] ?? '')?.[1];
      examples.push({ command: line, ...(status ? { status: Number(status) } : {}) });
    });
  }
  return examples;
}

const run = promisify(execFile);

describe('the README, run literally', () => {
  let p: TestPipeline;
  let cwd: string;

  beforeAll(async () => {
    p = await startTestPipeline();
    cwd = await tempDir('flights-readme-');
    await fs.symlink(path.join(ROOT, 'samples'), path.join(cwd, 'samples'));
    await fs.copyFile(path.join(ROOT, 'samples/flights-sample.csv'), path.join(cwd, 'big.csv'));
  });
  afterAll(() => p?.stop());

  it('answers every shell example with the status it shows', async () => {
    const examples = readmeExamples(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8'));
    expect(examples.length).toBeGreaterThanOrEqual(12);
    const filled: Record<string, string> = {};
    const env: Record<string, string> = { KEY: process.env.README_API_KEY ?? 'test-key' };
    const headers = path.join(cwd, 'headers.txt');
    let ran = 0;
    for (const example of examples) {
      let command = example.command.replaceAll(README_URL, p.url);
      for (const [placeholder, value] of Object.entries(filled)) command = command.replaceAll(placeholder, value);
      expect(command, `nothing to fill ${example.command} with`).not.toMatch(/<(uploadId|exportId|url)>/);
      // Whoever reads an export's status waits for it to be done, as the README's next line assumes.
      if (command.includes('/exports/')) await eventually(async () => ((await (await fetch(`${p.url}/exports/${filled['<exportId>']}`)).json()) as { status: string }).status === 'done' || undefined);
      const assignment = /^([a-z]+)=(\$\(.*\))$/.exec(command);
      const script = assignment ? `printf %s "${assignment[2]}"` : `curl() { command curl -D '${headers}' "$@"; }\n${command}`;
      await fs.rm(headers, { force: true });
      const { stdout } = await run('bash', ['-c', script], { cwd, env: { ...process.env, ...env } });
      ran++;
      if (assignment) {
        env[assignment[1]!] = stdout;
        continue;
      }
      const head = await fs.readFile(headers, 'utf8');
      const status = Number([...head.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)].at(-1)?.[1]);
      if (example.status) expect(status, example.command).toBe(example.status);
      else expect(status, example.command).toBeLessThan(400);
      const body = stdout.slice(stdout.indexOf('{'));
      const json = body.startsWith('{') ? (JSON.parse(body) as Record<string, unknown>) : {};
      // A query example shows data on the shipped sample, not just a header or an empty page
      // (once the upload before it has loaded: loading is asynchronous, so it may take a second run).
      if (command.includes('/getdata?') && status === 200) {
        const rowsIn = (out: string): number => {
          const page = out.startsWith('{') ? (JSON.parse(out) as { rows?: unknown[] }) : undefined;
          return page ? (page.rows?.length ?? 0) : out.trim().split('\n').length - 1;
        };
        let out = stdout;
        await eventually(async () => rowsIn(out) > 0 || void (out = (await run('bash', ['-c', script], { cwd, env: { ...process.env, ...env } })).stdout), 20_000, `rows from ${example.command}`);
      }
      if (typeof json.uploadId === 'string') filled['<uploadId>'] = json.uploadId;
      if (typeof json.exportId === 'string') filled['<exportId>'] = json.exportId;
      const upload = json.upload as { url?: string } | undefined;
      if (upload?.url) env.url = upload.url;
      const files = json.files as { url: string }[] | undefined;
      if (files?.[0]) filled['<url>'] = files[0].url;
      const location = /^location: (\S+)/im.exec(head)?.[1];
      if (location?.includes('/storage/sessions/')) env.session = location;
      if (location?.startsWith('/exports/')) filled['<exportId>'] = location.split('/').pop()!;
    }
    expect(ran).toBe(examples.length);
  }, 120_000);
});
