/** What a CSV file's rows should look like once queried: typed by the schema module, NULL for empty cells. */
import { parse } from 'csv-parse/sync';
import { COLUMNS } from '../../functions/core/schema.js';

export function expectedRows(csv: string): Record<string, unknown>[] {
  const records = parse(csv, { columns: true, bom: true }) as Record<string, string>[];
  return records.map((record) =>
    Object.fromEntries(
      COLUMNS.map((c) => {
        const raw = record[c.name];
        if (raw === undefined || raw === '' || raw === 'NA') return [c.name, null];
        return [c.name, c.type === 'integer' || c.type === 'number' ? Number(raw) : raw];
      }),
    ),
  );
}
