/**
 * ci/package: the same commit gives byte-identical zips; a zip holds the
 * compiled functions, a production-only package.json and its lockfile and
 * nothing else; and importing its entry point registers every function the
 * topology deploys.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/core/topology.js';
import { tempDir } from '../support/pipeline.js';
import { ROOT, runScript } from './run-script.js';

const run = promisify(execFile);
let dir: string;
let outs: string[];
let unpacked: string;

const artifacts = (out: string) => path.join(out, 'artifacts');

async function filesUnder(root: string, rel = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? filesUnder(root, path.join(rel, e.name)) : [path.join(rel, e.name)])));
  return nested.flat().sort();
}

beforeAll(async () => {
  dir = await tempDir('flights-package-');
  outs = [path.join(dir, 'a'), path.join(dir, 'b')];
  // Two independent runs at once: nothing they share (a build directory, a zip being appended to) may leak between them.
  const results = await Promise.all(outs.map((out) => runScript('ci/package', ['release/7'], { CI_OUT: out })));
  for (const r of results) expect(r.code, r.stderr).toBe(0);
  unpacked = path.join(dir, 'unpacked');
  await run('unzip', ['-q', path.join(artifacts(outs[0]!), 'upload-release-7.zip'), '-d', unpacked]);
}, 300_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('ci/package', () => {
  it('makes one zip per deployable function, named <function>-<branch>.zip, byte-identical across runs', async () => {
    const names = (await fs.readdir(artifacts(outs[0]!))).sort();
    expect(names).toEqual(FUNCTIONS.map((f) => `${f}-release-7.zip`).sort());
    for (const name of names) {
      const [a, b] = await Promise.all(outs.map((out) => fs.readFile(path.join(artifacts(out), name))));
      expect(a!.equals(b!), name).toBe(true);
    }
  });

  it('holds the compiled functions, package.json and the lockfile: no sources, maps, tests or data', async () => {
    const files = await filesUnder(unpacked);
    const sources = (await filesUnder(path.join(ROOT, 'functions'))).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(files).toEqual(['package-lock.json', 'package.json', ...sources.map((f) => path.join('dist/functions', f.replace(/\.ts$/, '.js')))].sort());
  });

  it('stores fixed timestamps and modes', async () => {
    const { stdout } = await run('zipinfo', ['-T', path.join(artifacts(outs[0]!), 'getdata-release-7.zip')]);
    const entries = stdout.split('\n').filter((l) => /^[-d]r/.test(l));
    expect(entries.length).toBeGreaterThan(50);
    for (const line of entries) expect(line).toMatch(/^-rw-r--r-- .* 20000101\.000000 /);
  });

  it('has a production-only package.json that the buildpack deploys as is', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(unpacked, 'package.json'), 'utf8'));
    const source = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg).not.toHaveProperty('devDependencies');
    expect(pkg.dependencies).toEqual(source.dependencies);
    expect(pkg.scripts).toEqual({ 'gcp-build': '' });
    expect(pkg.type).toBe('module');
    expect(pkg.engines).toEqual(source.engines);
    await expect(fs.stat(path.join(unpacked, pkg.main))).resolves.toBeTruthy();
  });

  it('has a lockfile pruned to the runtime dependencies, so npm ci in the buildpack installs no dev tool', async () => {
    const lock = JSON.parse(await fs.readFile(path.join(unpacked, 'package-lock.json'), 'utf8'));
    const pkg = JSON.parse(await fs.readFile(path.join(unpacked, 'package.json'), 'utf8'));
    expect(lock.packages['']).toMatchObject({ dependencies: pkg.dependencies });
    expect(lock.packages['']).not.toHaveProperty('devDependencies');
    const entries = Object.entries(lock.packages as Record<string, { dev?: boolean }>);
    expect(entries.filter(([, p]) => p.dev)).toEqual([]);
    for (const tool of ['vitest', 'typescript', 'tsx', 'supertest', 'autocannon']) expect(lock.packages).not.toHaveProperty(`node_modules/${tool}`);
    for (const dep of Object.keys(pkg.dependencies)) expect(lock.packages).toHaveProperty(`node_modules/${dep}`);
  });

  it('imports nothing but Node built-ins and its own runtime dependencies', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(unpacked, 'package.json'), 'utf8'));
    const imported = new Set<string>();
    for (const file of (await filesUnder(unpacked)).filter((f) => f.endsWith('.js'))) {
      const code = await fs.readFile(path.join(unpacked, file), 'utf8');
      // Static imports and re-exports (compiled ESM puts each at the start of a line) and dynamic import() calls.
      for (const m of code.matchAll(/^(?:import|export)\s[\w\s{},*$]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
        const spec = (m[1] ?? m[2] ?? m[3])!;
        if (spec.startsWith('.')) continue;
        if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(3);
    for (const name of imported) expect(Object.keys(pkg.dependencies), name).toContain(name);
  });

  it('registers every function of the topology when its entry point is imported', async () => {
    // The repository's node_modules stand in for the buildpack's install (npm ci --omit=dev of the same lockfile
    // takes over a minute here); the test above proves the code reaches for nothing else.
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(unpacked, 'node_modules'));
    const probe = `
      const pkg = JSON.parse(await (await import('node:fs/promises')).readFile('package.json', 'utf8'));
      await import('./' + pkg.main);
      const { getFunction } = await import('@google-cloud/functions-framework/testing');
      console.log(JSON.stringify(${JSON.stringify(FUNCTIONS)}.filter((name) => typeof getFunction(name) === 'function')));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: unpacked, env: { ...process.env, PROFILE: 'cloud' } });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual([...FUNCTIONS]);
  });
});
