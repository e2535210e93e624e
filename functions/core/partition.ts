/**
 * BigQuery bills the partitions a query reads. Filters on year, month and day
 * say which flight dates can match, but only a filter on the partitioning
 * column itself prunes partitions; so equal-filters on them also bound
 * flight_date. The added bounds are implied by the filters: results are the same.
 */
import type { Filter, QuerySpec } from './query-spec.js';
import { PARTITION_COLUMN } from './schema.js';

const iso = (y: number, m: number, d: number): string => new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);

function equalTo(filters: Filter[], column: string): number | undefined {
  const f = filters.find((x) => x.column === column && x.op === 'eq');
  return f && 'value' in f && typeof f.value === 'number' ? f.value : undefined;
}

/** The flight-date range the filters allow, when year (and month, day) are pinned by `eq`. */
export function impliedDateRange(filters: Filter[]): [string, string] | undefined {
  const year = equalTo(filters, 'year');
  if (year === undefined || year < 1 || year > 9999) return undefined;
  const month = equalTo(filters, 'month');
  if (month === undefined || month < 1 || month > 12) return [iso(year, 1, 1), iso(year, 12, 31)];
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const day = equalTo(filters, 'day');
  if (day === undefined || day < 1 || day > lastDay) return [iso(year, month, 1), iso(year, month, lastDay)];
  return [iso(year, month, day), iso(year, month, day)];
}

/** Any spec with filters: a page's, a count's or an export's. */
export function withPartitionBounds<T extends Pick<QuerySpec, 'filters'>>(spec: T): T {
  const range = impliedDateRange(spec.filters);
  if (!range) return spec;
  return {
    ...spec,
    filters: [...spec.filters, { column: PARTITION_COLUMN, op: 'gte', value: range[0] }, { column: PARTITION_COLUMN, op: 'lte', value: range[1] }],
  };
}
