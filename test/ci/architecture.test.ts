/** The architecture image the README shows: rendered from its current source, and naming every deployed function. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/core/topology.js';
import { ROOT } from './run-script.js';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

describe('images/architecture', () => {
  const source = read('images/architecture.dot');
  const svg = read('images/architecture.svg');

  it('is the rendering of the current source: every node of the .dot is in the SVG (run images/render after editing)', () => {
    const nodes = [...source.matchAll(/^\s*(\w+) \[label=/gm)].map((m) => m[1]!);
    expect(nodes.length).toBeGreaterThan(20);
    const rendered = new Set([...svg.matchAll(/<title>([^<]+)<\/title>/g)].map((m) => m[1]!));
    for (const node of nodes) expect(rendered, node).toContain(node);
  });

  it('shows every function the topology deploys, in the cloud and on the laptop', () => {
    for (const fn of FUNCTIONS) expect(svg.match(new RegExp(`\\b${fn}\\b`, 'g'))?.length ?? 0, fn).toBeGreaterThanOrEqual(2);
  });

  it('is embedded in the README', () => {
    expect(read('README.md')).toMatch(/!\[[^\]]+\]\(images\/architecture\.svg\)/);
  });
});
