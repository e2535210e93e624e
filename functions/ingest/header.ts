/** Maps an upload's header onto the schema: any order, optional columns may be absent, nothing unknown. */
import { COLUMNS, columnByName, type Column } from '../core/schema.js';
import type { CsvFault } from '../core/problem.js';

export interface HeaderMap {
  /** For each schema column, its position in the file, or -1 when the file omits it. */
  positions: number[];
  width: number;
}

const OTHER_DELIMITERS = [';', '\t', '|'];

export function mapHeader(header: string[]): { ok: true; map: HeaderMap } | { ok: false; faults: CsvFault[] } {
  const faults: CsvFault[] = [];
  const seen = new Map<string, number>();
  header.forEach((rawName, index) => {
    const name = rawName.trim();
    const fault = (reason: string): void => void faults.push({ line: 1, column: index + 1, field: name, value: rawName, reason });
    if (!columnByName.has(name)) {
      const delimiter = OTHER_DELIMITERS.find((d) => name.includes(d));
      fault(delimiter ? `unknown column; the file looks ${JSON.stringify(delimiter)}-delimited, but only commas separate fields` : 'unknown column');
    } else if (seen.has(name)) {
      fault(`duplicate column (also column ${seen.get(name)! + 1})`);
    } else {
      seen.set(name, index);
    }
  });
  const missing = COLUMNS.filter((c: Column) => c.inHeader === 'required' && !seen.has(c.name));
  for (const c of missing) faults.push({ line: 1, field: c.name, reason: 'required column missing from the header' });
  if (faults.length) return { ok: false, faults };
  return { ok: true, map: { positions: COLUMNS.map((c) => seen.get(c.name) ?? -1), width: header.length } };
}
