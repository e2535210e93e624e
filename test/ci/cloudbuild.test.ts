/**
 * cloudbuild.yaml evaluated as Cloud Build would run it for develop, master and
 * a feature branch: the substitutions expanded, every step's environment and
 * secrets assembled, and every step's script run with CI_DRY_RUN=1, so the
 * scripts' own branch decisions (ci/lib.sh) say which of them would work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, runScript } from './run-script.js';

interface Step {
  id: string;
  name: string;
  entrypoint?: string;
  args?: string[];
  env?: string[];
  secretEnv?: string[];
  waitFor?: string[];
}
interface BuildConfig {
  substitutions: Record<string, string>;
  options: { env: string[]; dynamicSubstitutions?: boolean; logging?: string; machineType?: string };
  timeout: string;
  availableSecrets: { secretManager: { versionName: string; env: string }[] };
  steps: Step[];
}

const config = parse(fs.readFileSync(path.join(ROOT, 'cloudbuild.yaml'), 'utf8')) as BuildConfig;
const RUNNER_IMAGE = 'flights-ci-runner';

/** Cloud Build's substitution: $NAME and ${NAME}; user substitutions may refer to built-in ones (dynamicSubstitutions). */
function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    if (!(name in values)) throw new Error(`${whole} is no substitution Cloud Build knows here`);
    return values[name]!;
  });
}

function substitutionsFor(branch: string): Record<string, string> {
  const builtIn = { BRANCH_NAME: branch, COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567', SHORT_SHA: '0123456', BUILD_ID: 'build-1', PROJECT_ID: 'flights-prod', LOCATION: 'europe-west1', TRIGGER_NAME: `${branch}-push` };
  const user = Object.fromEntries(Object.entries(config.substitutions).map(([k, v]) => [k, substitute(v, builtIn)]));
  return { ...builtIn, ...user };
}

const envList = (entries: string[]): Record<string, string> => Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

/** What a step's container sees: the build's env, the step's, and its secrets (here, placeholders). */
function stepEnv(step: Step, subs: Record<string, string>): Record<string, string> {
  const secrets = Object.fromEntries((step.secretEnv ?? []).map((name) => [name, `secret-${name}`]));
  return { ...envList(config.options.env.map((e) => substitute(e, subs))), ...envList((step.env ?? []).map((e) => substitute(e, subs))), ...secrets };
}

/** Runs every step's script in dry-run mode; returns the stages that would do their work, in order, with each one's env. */
async function evaluate(branch: string): Promise<{ stage: string; env: Record<string, string> }[]> {
  const subs = substitutionsFor(branch);
  const ran: { stage: string; env: Record<string, string> }[] = [];
  for (const step of config.steps) {
    const env = stepEnv(step, subs);
    const args = (step.args ?? []).map((a) => substitute(a, subs));
    // Unset, so nothing notifies; the dry run stops before any work.
    const result = await runScript(step.entrypoint!, args, { ...env, CHAT_WEBHOOK_URL: undefined, CI_DRY_RUN: '1' }, { inheritEnv: false });
    expect(result.code, `${step.id}: ${result.stderr}`).toBe(0);
    const decision = /^ci: (run|skip) (\S+)/m.exec(result.stdout);
    expect(decision, `${step.id} printed no decision: ${result.stdout}`).not.toBeNull();
    expect(decision![2], `${step.id} runs the stage it is named for`).toBe(step.id);
    if (decision![1] === 'run') ran.push({ stage: decision![2]!, env });
  }
  return ran;
}

describe('cloudbuild.yaml', () => {
  it('has no logic of its own: every step runs one ci/ script, with no shell in between', () => {
    for (const step of config.steps) {
      expect(step.entrypoint, step.id).toMatch(/^ci\/[a-z]+$/);
      const script = path.join(ROOT, step.entrypoint!);
      expect(fs.statSync(script).mode & 0o111, `${step.entrypoint} is executable`).not.toBe(0);
      for (const arg of step.args ?? []) expect(arg, `${step.id} args`).toMatch(/^[\w.-]+$/);
      // Sequential: a step starts only when the one before it succeeded, so a failure stops the build.
      expect(step.waitFor, step.id).toBeUndefined();
    }
  });

  it('runs on pinned images only: a tag that names a version, or the runner built from pinned images', () => {
    const pinned = /^[\w./-]+(:\d[\w.-]*|@sha256:[0-9a-f]{64})$/;
    const [first, ...rest] = config.steps;
    expect(first!.name).toMatch(pinned);
    expect(first!.entrypoint).toBe('ci/runner');
    for (const step of rest) expect(step.name, step.id).toBe(RUNNER_IMAGE);
    const dockerfile = fs.readFileSync(path.join(ROOT, 'ci/runner.Dockerfile'), 'utf8');
    const images = [...dockerfile.matchAll(/^FROM (\S+)|--from=(\S+)/gm)].map((m) => (m[1] ?? m[2])!);
    expect(images.length).toBeGreaterThanOrEqual(3);
    for (const image of images) expect(image).toMatch(pinned);
  });

  it('sets timeout, logging and machine type, and takes every secret from Secret Manager', () => {
    expect(config.timeout).toMatch(/^\d+s$/);
    // Each step stops its long command before this deadline so that it can still report itself (ci/lib.sh ci_bounded).
    expect(config.options.env).toContain(`CI_BUILD_TIMEOUT_S=${parseInt(config.timeout, 10)}`);
    expect(config.options.logging).toBe('CLOUD_LOGGING_ONLY');
    expect(config.options.machineType).toMatch(/^E2_HIGHCPU_\d+$/);
    expect(Object.keys(config.substitutions).sort()).toEqual(['_ARTIFACTS_BUCKET', '_PULUMI_STACK', '_REGION']);
    const declared = config.availableSecrets.secretManager.map((s) => s.env).sort();
    expect(declared).toEqual(['API_KEY', 'CHAT_WEBHOOK_URL', 'PULUMI_ACCESS_TOKEN']);
    for (const s of config.availableSecrets.secretManager) expect(s.versionName).toMatch(/^projects\/\$PROJECT_ID\/secrets\/[\w-]+\/versions\/\w+$/);
    for (const step of config.steps) for (const name of step.secretEnv ?? []) expect(declared, `${step.id} secret ${name}`).toContain(name);
    const text = fs.readFileSync(path.join(ROOT, 'cloudbuild.yaml'), 'utf8');
    expect(text).not.toMatch(/https:\/\/chat\.googleapis|hooks\.slack|pul-[0-9a-f]{20}/);
  });

  it('develop: install, typecheck, test, package, upload and preview on the develop stack, then the success notice', async () => {
    const ran = await evaluate('develop');
    expect(ran.map((r) => r.stage)).toEqual(['runner', 'install', 'typecheck', 'test', 'package', 'upload', 'preview', 'notify']);
    const preview = ran.find((r) => r.stage === 'preview')!.env;
    expect(preview).toMatchObject({ STACK: 'develop', SHORT_SHA: '0123456', BRANCH_NAME: 'develop', PULUMI_ACCESS_TOKEN: 'secret-PULUMI_ACCESS_TOKEN' });
    expect(ran.find((r) => r.stage === 'upload')!.env).toMatchObject({ PULUMI_ACCESS_TOKEN: 'secret-PULUMI_ACCESS_TOKEN', SHORT_SHA: '0123456' });
  });

  it('master: the same on the master stack, then deploy and smoke with the API key, then the success notice', async () => {
    const ran = await evaluate('master');
    expect(ran.map((r) => r.stage)).toEqual(['runner', 'install', 'typecheck', 'test', 'package', 'upload', 'preview', 'deploy', 'smoke', 'notify']);
    expect(ran.find((r) => r.stage === 'deploy')!.env).toMatchObject({ STACK: 'master', SHORT_SHA: '0123456', PULUMI_ACCESS_TOKEN: 'secret-PULUMI_ACCESS_TOKEN' });
    const smoke = ran.find((r) => r.stage === 'smoke')!.env;
    expect(smoke).toMatchObject({ API_KEY: 'secret-API_KEY', CI_OUT: '/workspace/dist/ci' });
    expect(smoke).not.toHaveProperty('PULUMI_ACCESS_TOKEN');
  });

  it('a feature branch: the tests only', async () => {
    const ran = await evaluate('feature/faster-loads');
    expect(ran.map((r) => r.stage)).toEqual(['runner', 'install', 'typecheck', 'test', 'notify']);
    for (const r of ran) expect(r.env).not.toHaveProperty('PULUMI_ACCESS_TOKEN');
  });

  it('every step can report its own failure: each one gets the webhook', async () => {
    for (const step of config.steps) expect(step.secretEnv, step.id).toContain('CHAT_WEBHOOK_URL');
  });

  it('every ci/ script answers --help with its usage', async () => {
    const scripts = fs.readdirSync(path.join(ROOT, 'ci')).filter((f) => !f.includes('.'));
    expect(scripts.sort()).toEqual(['deploy', 'install', 'notify', 'package', 'preview', 'runner', 'smoke', 'test', 'typecheck', 'upload']);
    for (const script of scripts) {
      const result = await runScript(`ci/${script}`, ['--help']);
      expect(result.code, script).toBe(0);
      expect(result.stdout, script).toMatch(new RegExp(`^Usage: ci/${script}\\b`));
    }
  });
});
