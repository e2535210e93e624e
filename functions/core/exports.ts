/**
 * Export jobs: `running → done | failed`. The record and the files share the
 * `exports/` prefix (`exports/<id>.json`, `exports/<id>/*.csv.gz`), so the
 * bucket's lifecycle rule on that prefix expires both together.
 */
import type { ObjectStore } from './ports.js';
import type { ExportSpec } from './query-spec.js';
import { JsonRecords } from './records.js';

export const EXPORTS_PREFIX = 'exports/';

export type ExportState = 'running' | 'done' | 'failed';

export interface ExportFile {
  name: string;
  bytes: number;
}

export interface ExportRecord {
  exportId: string;
  status: ExportState;
  /** The parsed query, so the exporter runs exactly what was validated. */
  query: ExportSpec;
  columns: string[];
  createdAt: string;
  updatedAt: string;
  rows?: number;
  files?: ExportFile[];
  reason?: string;
}

/** Where an export's files go. */
export const exportFilesPrefix = (exportId: string): string => `${EXPORTS_PREFIX}${exportId}/`;

/** The warehouse job id: deterministic, so a redelivered request reuses the job. */
export const exportJobId = (exportId: string): string => `export_${exportId}`;

export const exportLedger = (store: ObjectStore): JsonRecords<ExportRecord> => new JsonRecords<ExportRecord>(store, EXPORTS_PREFIX);
