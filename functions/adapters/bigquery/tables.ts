/**
 * The BigQuery tables, as `tables.insert` resources: the one definition of the
 * flights table (schema from core/schema.ts, partitioned on flight_date,
 * clustered) and of the load manifest. infra/ creates them from here; the
 * functions never do, since their least-privilege accounts may not create
 * datasets or tables.
 */
import type { FormattedMetadata } from '@google-cloud/bigquery';
import { bigQueryTableSchema, CLUSTER_COLUMNS, PARTITION_COLUMN, TABLE, type BigQueryField } from '../../core/schema.js';

export const FLIGHTS_TABLE = TABLE;
export const MANIFEST_TABLE = '_loads';

/** The REST API's Table resource (the client's name for `bigquery.ITable`). */
export type TableResource = FormattedMetadata;

export interface DatasetRef {
  projectId: string;
  datasetId: string;
}

/** One row per (object, generation) ever loaded: what makes a retried or racing load add nothing. */
export const MANIFEST_SCHEMA: BigQueryField[] = [
  { name: 'object', type: 'STRING', mode: 'REQUIRED', description: 'Object the rows were loaded from' },
  { name: 'generation', type: 'INT64', mode: 'REQUIRED', description: 'Generation of that object' },
  { name: 'rows', type: 'INT64', mode: 'REQUIRED', description: 'Rows loaded from it' },
  { name: 'job_id', type: 'STRING', mode: 'REQUIRED', description: 'The load job' },
  { name: 'loaded_at', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'When the load committed' },
];

export function flightsTableDefinition(dataset: DatasetRef, tableId: string = FLIGHTS_TABLE): TableResource {
  return {
    tableReference: { ...dataset, tableId },
    description: 'Flight rows loaded from uploaded CSV files, with their lineage',
    schema: { fields: bigQueryTableSchema() },
    timePartitioning: { type: 'DAY', field: PARTITION_COLUMN },
    clustering: { fields: [...CLUSTER_COLUMNS] },
  };
}

export function manifestTableDefinition(dataset: DatasetRef, tableId: string = MANIFEST_TABLE): TableResource {
  return {
    tableReference: { ...dataset, tableId },
    description: 'One row per loaded (object, generation): the loader’s exactly-once record',
    schema: { fields: MANIFEST_SCHEMA },
    // Every load looks its batch up by object: clustering lets BigQuery read only the blocks holding those names.
    clustering: { fields: ['object'] },
  };
}
