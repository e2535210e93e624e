/** Each function's own environment: validation threads follow the vCPUs a stack gives the validating functions. */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../functions/core/config.js';
import { FUNCTIONS } from '../functions/core/topology.js';
import { functionOwnEnvironment } from './function-env.js';
import { runStack, stackConfig, type StackRun } from './testing/pulumi-mocks.js';

const threadsOf = (env: Record<string, string>): number => loadConfig({ PROFILE: 'cloud', CURSOR_SECRET: 'x', ...env }).ingest.validationThreads;

describe('functionOwnEnvironment', () => {
  it('gives upload and validateUpload one validation thread per vCPU beyond the first, and none on a single vCPU', () => {
    for (const f of ['upload', 'validateUpload'] as const) {
      expect([threadsOf(functionOwnEnvironment(f, { cpu: '0.5' })), threadsOf(functionOwnEnvironment(f, { cpu: '1' }))]).toEqual([0, 0]);
      expect([threadsOf(functionOwnEnvironment(f, { cpu: '2' })), threadsOf(functionOwnEnvironment(f, { cpu: '4' }))]).toEqual([1, 3]);
    }
  });

  it('gives the functions that validate nothing no thread, whatever their vCPUs', () => {
    for (const f of FUNCTIONS.filter((f) => f !== 'upload' && f !== 'validateUpload')) expect(functionOwnEnvironment(f, { cpu: '4' }), f).toEqual({});
  });
});

describe('a stack that gives the upload function 2 vCPUs', () => {
  let run: StackRun;
  beforeAll(async () => {
    const sizing = JSON.parse(stackConfig('develop')['flights:functions']!) as Record<string, object>;
    run = await runStack('develop', { 'flights:sourceVersion': 'abc1234', 'flights:functions': { ...sizing, upload: { ...sizing.upload, cpu: '2' } } });
  }, 120_000);
  const envOf = (name: string): Record<string, string> => {
    const fn = run.resources.find((r) => r.type === 'gcp:cloudfunctionsv2/function:Function' && r.name === name)!;
    return fn.inputs.serviceConfig.environmentVariables as Record<string, string>;
  };

  it('deploys it with a validation thread, and the single-vCPU functions without', () => {
    expect(envOf('upload').VALIDATION_THREADS).toBe('1');
    expect(threadsOf(envOf('upload'))).toBe(1);
    expect(threadsOf(envOf('validate-upload'))).toBe(0);
    expect(threadsOf(envOf('load-flights'))).toBe(0);
  });
});
