/**
 * Realistic, bounded traffic for the dashboard: a steady stream of uploads
 * of the sample's flights (each a different selection of rows, so none is a
 * duplicate), some invalid files, queries, and a burst of concurrent large
 * uploads that pushes POST /upload over its 300 ms objective and so burns
 * latency budget. Used by `npm run demo` and by the dashboard's browser test.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const SAMPLE = fileURLToPath(new URL('../samples/flights-sample.csv', import.meta.url));

export interface TrafficOptions {
  url: string;
  /** Sent as x-api-key; none with AUTH=off. */
  key?: string;
  steadySeconds: number;
  /** Uploads per second in the steady phases. */
  uploadsPerSecond: number;
  /** Concurrent uploads in the burst, and rows in each. */
  burstUploads: number;
  burstRows: number;
  /** Share of steady uploads that are invalid (a bad date, a missing column). */
  badShare: number;
  random?: () => number;
  onResult?: (what: string, status: number) => void;
}

export interface TrafficReport {
  /** `what status` → count, e.g. `upload 201`. */
  counts: Record<string, number>;
}

function sampleRows(): { header: string; rows: string[] } {
  const [header, ...rows] = fs.readFileSync(SAMPLE, 'utf8').trimEnd().split('\n');
  return { header: header!, rows };
}

const QUERIES = [
  '/getdata?limit=20',
  '/getdata?carrier=eq.AA&origin=eq.JFK&order=dep_delay.desc&limit=10',
  '/getdata?select=carrier,mean_delay:dep_delay.avg(),flights:count()&order=carrier',
  '/getdata?dep_delay=gt.60&select=flight,dest,dep_delay&limit=50',
  '/schema',
];

export async function driveTraffic(options: TrafficOptions): Promise<TrafficReport> {
  const random = options.random ?? Math.random;
  const { header, rows } = sampleRows();
  const counts: Record<string, number> = {};
  const note = (what: string, status: number): void => {
    const k = `${what} ${status}`;
    counts[k] = (counts[k] ?? 0) + 1;
    options.onResult?.(what, status);
  };
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ ...(options.key ? { 'x-api-key': options.key } : {}), ...extra });
  // Distinct row selections make distinct files: the same content twice would be answered as a duplicate.
  const file = (n: number): string => {
    const picked = Array.from({ length: n }, () => rows[Math.floor(random() * rows.length)]!);
    return `${header}\n${picked.join('\n')}\n`;
  };
  const badFile = (): string =>
    random() < 0.5 ? file(20).replace(/\n(\d+),2013,(\d+),(\d+),/, '\n$1,2013,13,$3,') : file(20).replace(/^id,year,month,day/, 'id,year,month');
  const upload = async (body: string, what: string): Promise<void> => {
    const res = await fetch(`${options.url}/upload`, { method: 'POST', headers: headers({ 'content-type': 'text/csv' }), body });
    await res.arrayBuffer();
    note(what, res.status);
  };
  const query = async (): Promise<void> => {
    const res = await fetch(`${options.url}${QUERIES[Math.floor(random() * QUERIES.length)]}`, { headers: headers() });
    await res.arrayBuffer();
    note('query', res.status);
  };
  const steady = async (seconds: number): Promise<void> => {
    const ticks = Math.max(1, Math.round(seconds * options.uploadsPerSecond));
    for (let i = 0; i < ticks; i++) {
      const started = Date.now();
      const bad = random() < options.badShare;
      await Promise.all([upload(bad ? badFile() : file(20 + Math.floor(random() * 280)), bad ? 'bad upload' : 'upload'), query()]);
      const wait = 1000 / options.uploadsPerSecond - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  await steady(options.steadySeconds / 2);
  const big = Array.from({ length: options.burstUploads }, () => file(options.burstRows));
  await Promise.all(big.map((body) => upload(body, 'burst upload')));
  await steady(options.steadySeconds / 2);
  return { counts };
}
