/**
 * ci/preview, ci/deploy and ci/upload against fake `pulumi` and `gcloud`
 * executables on PATH that record their argv (neither CLI installs here), and
 * ci/notify against a loopback webhook: what each would ask Pulumi, Cloud
 * Storage and the chat to do, and that a failing step reports itself.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/pipeline.js';
import { ROOT, runScript } from './run-script.js';

let dir: string;
let bin: string;
let calls: string;
let out: string;
let webhook: http.Server;
let webhookUrl: string;
let posts: { contentType: string | undefined; body: unknown }[];

/** A fake CLI: appends its argv (one line, tab-separated) to `calls`; answers `stack output <name>` from FAKE_OUTPUT_<name>; fails when FAKE_FAIL matches its argv, hangs when FAKE_HANG does. */
const fakeCli = (name: string) => `#!/usr/bin/env bash
printf '%s' ${name} >>"$FAKE_CALLS"; printf '\\t%s' "$@" >>"$FAKE_CALLS"; echo >>"$FAKE_CALLS"
if [[ -n "\${FAKE_FAIL:-}" && "$*" == *"$FAKE_FAIL"* ]]; then echo "error: $FAKE_FAIL failed" >&2; exit 3; fi
if [[ -n "\${FAKE_HANG:-}" && "$*" == *"$FAKE_HANG"* ]]; then exec sleep 600; fi
if [[ "$1 $2" == "stack output" ]]; then var="FAKE_OUTPUT_$3"; echo "\${!var}"; fi
`;

const readCalls = async (): Promise<string[][]> =>
  (await fs.readFile(calls, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t'));

beforeAll(async () => {
  dir = await tempDir('flights-ci-');
  bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  for (const cli of ['pulumi', 'gcloud']) await fs.writeFile(path.join(bin, cli), fakeCli(cli), { mode: 0o755 });
  webhook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      posts.push({ contentType: req.headers['content-type'], body: JSON.parse(body) });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise((resolve) => webhook?.close(resolve));
  await fs.rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  calls = path.join(dir, `calls-${Math.random().toString(36).slice(2)}`);
  out = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
  posts = [];
});

const env = (extra: Record<string, string> = {}) => ({
  PATH: `${bin}:${process.env.PATH}`,
  FAKE_CALLS: calls,
  CI_OUT: out,
  BRANCH_NAME: 'master',
  COMMIT_SHA: 'feedc0de00000000000000000000000000000000',
  SHORT_SHA: 'feedc0d',
  ...extra,
});

const INFRA = path.join(ROOT, 'infra');

describe('ci/preview and ci/deploy', () => {
  it('preview sets sourceVersion to the short SHA on the branch stack, then previews that stack', async () => {
    const result = await runScript('ci/preview', [], env({ BRANCH_NAME: 'develop' }));
    expect(result.code, result.stderr).toBe(0);
    expect(await readCalls()).toEqual([
      ['pulumi', 'config', 'set', 'flights:sourceVersion', 'feedc0d', '--stack', 'develop', '--cwd', INFRA, '--non-interactive'],
      ['pulumi', 'preview', '--stack', 'develop', '--cwd', INFRA, '--non-interactive', '--diff'],
    ]);
  });

  it('deploy runs pulumi up on the stack and leaves the gateway URL where ci/smoke looks', async () => {
    const result = await runScript('ci/deploy', [], env({ FAKE_OUTPUT_gatewayUrl: 'https://flights-gw-abc.ew.gateway.dev' }));
    expect(result.code, result.stderr).toBe(0);
    expect(await readCalls()).toEqual([
      ['pulumi', 'config', 'set', 'flights:sourceVersion', 'feedc0d', '--stack', 'master', '--cwd', INFRA, '--non-interactive'],
      ['pulumi', 'up', '--yes', '--skip-preview', '--stack', 'master', '--cwd', INFRA, '--non-interactive'],
      ['pulumi', 'stack', 'output', 'gatewayUrl', '--stack', 'master', '--cwd', INFRA],
    ]);
    expect((await fs.readFile(path.join(out, 'gateway-url'), 'utf8')).trim()).toBe('https://flights-gw-abc.ew.gateway.dev');
  });

  it('STACK overrides the branch; a branch name with a slash is no stack name', async () => {
    await runScript('ci/preview', [], env({ BRANCH_NAME: 'release/1.2', STACK: 'staging' }));
    await runScript('ci/preview', [], env({ BRANCH_NAME: 'release/1.2' }));
    const stacks = (await readCalls()).filter((c) => c[1] === 'preview').map((c) => c[c.indexOf('--stack') + 1]);
    expect(stacks).toEqual(['staging', 'release-1.2']);
  });

  it('in the develop pipeline deploy does nothing: pulumi is never called', async () => {
    const result = await runScript('ci/deploy', [], env({ PIPELINE_BRANCH: 'develop', BRANCH_NAME: 'develop' }));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('skip deploy');
    expect(await readCalls()).toEqual([]);
  });

  it('a failed pulumi up fails the step and posts the failure, naming branch, commit, step and build', async () => {
    const result = await runScript(
      'ci/deploy',
      [],
      env({ FAKE_FAIL: 'up --yes', CHAT_WEBHOOK_URL: webhookUrl, BUILD_ID: 'b-42', PROJECT_ID: 'flights-prod', LOCATION: 'europe-west1' }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('error: up --yes failed');
    expect((await readCalls()).map((c) => c[1])).toEqual(['config', 'up']);
    expect(posts).toEqual([
      {
        contentType: 'application/json; charset=utf-8',
        body: {
          text: 'flights-ingest master @ feedc0de0000: failure in deploy. https://console.cloud.google.com/cloud-build/builds;region=europe-west1/b-42?project=flights-prod',
        },
      },
    ]);
  });

  it('a pulumi up still running near the build timeout is stopped, fails the step and posts the failure (Cloud Build would kill it silently)', async () => {
    await fs.mkdir(out, { recursive: true });
    // A build started 3,600 s ago less the 60 s margin less 2 s: the step has 2 s before the deadline it keeps.
    await fs.writeFile(path.join(out, 'build-started-at'), String(Math.floor(Date.now() / 1000) - 3600 + 60 + 2));
    const result = await runScript('ci/deploy', [], env({ FAKE_HANG: 'up --yes', CI_BUILD_TIMEOUT_S: '3600', CHAT_WEBHOOK_URL: webhookUrl, BUILD_ID: 'b-43', PROJECT_ID: 'p', LOCATION: 'global' }));
    expect(result.code).toBe(124);
    expect(result.stderr).toContain("ci: deploy stopped: the build's 3600 s timeout was 60 s away (pulumi up --yes");
    expect(posts.map((p) => p.body)).toEqual([
      { text: 'flights-ingest master @ feedc0de0000: failure in deploy. https://console.cloud.google.com/cloud-build/builds;region=global/b-43?project=p' },
    ]);
  });

  it('the first step notes when the build started; later steps keep that start', async () => {
    const before = Math.floor(Date.now() / 1000);
    const first = await runScript('ci/preview', [], env({ BRANCH_NAME: 'develop', CI_BUILD_TIMEOUT_S: '3600' }));
    expect(first.code, first.stderr).toBe(0);
    const started = Number(await fs.readFile(path.join(out, 'build-started-at'), 'utf8'));
    expect(started).toBeGreaterThanOrEqual(before);
    expect(started).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    await fs.writeFile(path.join(out, 'build-started-at'), '1700000000\n');
    // Long past that build's deadline: the command still runs (for a second), is stopped, and the step fails.
    const later = await runScript('ci/preview', [], env({ BRANCH_NAME: 'develop', CI_BUILD_TIMEOUT_S: '3600', FAKE_HANG: 'preview' }));
    expect(later.code).toBe(124);
    expect((await fs.readFile(path.join(out, 'build-started-at'), 'utf8')).trim()).toBe('1700000000');
  });
});

describe('ci/notify', () => {
  it('posts the success with the link it is given', async () => {
    const result = await runScript('ci/notify', ['success'], env({ CHAT_WEBHOOK_URL: webhookUrl, BRANCH_NAME: 'feat/"quoted"', BUILD_URL: 'https://ci.example/builds/7' }));
    expect(result.code, result.stderr).toBe(0);
    expect(posts.map((p) => p.body)).toEqual([{ text: 'flights-ingest feat/"quoted" @ feedc0de0000: success. https://ci.example/builds/7' }]);
  });

  it('fails when the webhook refuses the message, so a broken notice is seen', async () => {
    const result = await runScript('ci/notify', ['failure', 'test'], env({ CHAT_WEBHOOK_URL: `${webhookUrl.replace(/:\d+\//, ':1/')}` }));
    expect(result.code).not.toBe(0);
  });

  it('refuses a status other than success or failure', async () => {
    const result = await runScript('ci/notify', ['green'], env());
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("status must be success or failure, not 'green'");
  });
});

describe('ci/upload', () => {
  it('copies the branch zips under the short SHA and under the branch, to the bucket the stack names', async () => {
    await fs.mkdir(path.join(out, 'artifacts'), { recursive: true });
    for (const f of ['upload-master.zip', 'getdata-master.zip', 'upload-develop.zip']) await fs.writeFile(path.join(out, 'artifacts', f), f);
    const result = await runScript('ci/upload', [], env({ FAKE_OUTPUT_artifactsBucket: 'flights-artifacts-123' }));
    expect(result.code, result.stderr).toBe(0);
    const zips = [path.join(out, 'artifacts/getdata-master.zip'), path.join(out, 'artifacts/upload-master.zip')];
    expect(await readCalls()).toEqual([
      ['pulumi', 'stack', 'output', 'artifactsBucket', '--stack', 'master', '--cwd', INFRA],
      ['gcloud', 'storage', 'cp', '--quiet', ...zips, 'gs://flights-artifacts-123/feedc0d/'],
      ['gcloud', 'storage', 'cp', '--quiet', ...zips, 'gs://flights-artifacts-123/master/'],
    ]);
  });

  it('names the zips after STACK when it is set, not after the checked-out branch', async () => {
    await fs.mkdir(path.join(out, 'artifacts'), { recursive: true });
    for (const f of ['upload-master.zip', 'upload-main.zip']) await fs.writeFile(path.join(out, 'artifacts', f), f);
    const result = await runScript('ci/upload', [], env({ BRANCH_NAME: 'main', STACK: 'master', ARTIFACTS_BUCKET: 'b' }));
    expect(result.code, result.stderr).toBe(0);
    expect((await readCalls()).map((c) => c.slice(4))).toEqual([
      [path.join(out, 'artifacts/upload-master.zip'), 'gs://b/feedc0d/'],
      [path.join(out, 'artifacts/upload-master.zip'), 'gs://b/master/'],
    ]);
  });

  it('takes ARTIFACTS_BUCKET without asking the stack, and fails when ci/package made nothing', async () => {
    const result = await runScript('ci/upload', [], env({ ARTIFACTS_BUCKET: 'b' }));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no zips for master');
    expect(await readCalls()).toEqual([]);
  });
});
