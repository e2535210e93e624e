/** Runs a ci/ script as Cloud Build or a developer would: bash, the repository as cwd, a chosen environment. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** What Cloud Build sets for its steps: a test run inside a build must not pass its own pipeline on to the script under test. */
const PIPELINE_ENV = ['PIPELINE_BRANCH', 'BRANCH_NAME', 'COMMIT_SHA', 'SHORT_SHA', 'STACK', 'CI_OUT', 'ARTIFACTS_BUCKET', 'CHAT_WEBHOOK_URL', 'API_KEY', 'PULUMI_ACCESS_TOKEN', 'CI_DRY_RUN', 'CI_BUILD_TIMEOUT_S'];

export function runScript(script: string, args: string[] = [], env: Record<string, string | undefined> = {}, options: { inheritEnv?: boolean } = {}): Promise<ScriptResult> {
  const base: Record<string, string | undefined> = options.inheritEnv === false ? { PATH: process.env.PATH, HOME: process.env.HOME } : { ...process.env };
  for (const name of PIPELINE_ENV) delete base[name];
  return new Promise((resolve) => {
    execFile(path.join(ROOT, script), args, { cwd: ROOT, env: { ...base, ...env }, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
