/**
 * The filesystem bucket's start-up cleanup (FsObjectStore.removeTempFiles) on a data directory of
 * `SWEEP_OBJECTS` stored CSVs (default 100k; each a metadata file and a content file, spread over
 * 100 day directories), built directly under `BENCH_DIR` (default /dev/shm). `BEFORE_TREE=<checkout>`
 * times that checkout's sweep too, alternately with this one's (`SWEEP_RUNS` pairs, each pair in the
 * opposite order to the last). Then times one sweep that finds 1% of the objects with an orphaned generation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FsObjectStore } from '../functions/adapters/local/fs-store.js';
import { envInt, median, since } from './support.js';

const objects = envInt('SWEEP_OBJECTS', 100_000);
const runs = envInt('SWEEP_RUNS', 5);
const root = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? '/dev/shm', 'bench-sweep-'));
const bucket = path.join(root, 'b');
const generation = 1796000000000000n;

const objectPath = (i: number): string => `incoming/2026/${String(i % 100).padStart(3, '0')}/upload-${i}.csv`;
function build(): void {
  for (let day = 0; day < 100; day++) {
    for (const dir of ['meta', 'objects']) fs.mkdirSync(path.join(bucket, dir, path.dirname(objectPath(day))), { recursive: true });
  }
  for (let i = 0; i < objects; i++) {
    const name = objectPath(i);
    const info = { bucket: 'b', name, generation: String(generation + BigInt(i)), metageneration: '1', size: 300, contentType: 'text/csv', metadata: {} };
    fs.writeFileSync(path.join(bucket, 'meta', `${name}.json`), JSON.stringify(info));
    fs.writeFileSync(path.join(bucket, 'objects', `${name}#${info.generation}`), 'x'.repeat(300));
  }
}

type Sweeper = { removeTempFiles(before: Date): Promise<number> };
const sides: [string, Sweeper][] = [['after', new FsObjectStore(root, 'b')]];
if (process.env.BEFORE_TREE) {
  const url = pathToFileURL(path.resolve(process.env.BEFORE_TREE, 'functions/adapters/local/fs-store.ts')).href;
  const before = (await import(url)) as { FsObjectStore: typeof FsObjectStore };
  sides.unshift(['before', new before.FsObjectStore(root, 'b')]);
}

try {
  let start = performance.now();
  build();
  console.log(`built ${objects} objects in ${(since(start) / 1000).toFixed(1)} s`);
  const times = new Map<string, number[]>(sides.map(([side]) => [side, []]));
  for (let run = 0; run < runs; run++) {
    for (const [side, store] of run % 2 ? [...sides].reverse() : sides) {
      start = performance.now();
      const removed = await store.removeTempFiles(new Date());
      times.get(side)!.push(since(start));
      if (removed) throw new Error(`${side} removed ${removed} files from a clean directory`);
    }
  }
  for (const [side, ms] of times) console.log(`${side}: median ${median(ms).toFixed(0)} ms over ${ms.length} sweeps (${ms.map((t) => t.toFixed(0)).join(', ')})`);
  for (let i = 0; i < objects; i += 100) {
    fs.writeFileSync(path.join(bucket, 'objects', `${objectPath(i)}#${generation + BigInt(i) + 1n}`), 'x'.repeat(300));
  }
  start = performance.now();
  const removed = await sides.at(-1)![1].removeTempFiles(new Date(Date.now() + 1000));
  console.log(`after, ${objects / 100} orphans: removed ${removed} in ${since(start).toFixed(0)} ms`);
  console.log(`load average: ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
