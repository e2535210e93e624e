import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import {
  bigQueryCanonicalCsvSchema, bigQueryTableSchema, CANONICAL_HEADER, COLUMNS, duckDbTableDdl,
} from '../../functions/core/schema.js';
import { KAGGLE_HEADER } from '../support/generate-flights.js';

describe('the schema module', () => {
  it('covers exactly the columns of the reference flights export', () => {
    expect(COLUMNS.map((c) => c.name).join(',')).toBe(KAGGLE_HEADER);
  });

  it('lets exports omit only id and name', () => {
    expect(COLUMNS.filter((c) => c.inHeader === 'optional').map((c) => c.name)).toEqual(['id', 'name']);
  });

  it('derives a DuckDB table that accepts a canonical row and enforces NOT NULL', async () => {
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    await db.run(duckDbTableDdl('t'));
    const columns = (await db.runAndReadAll("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 't'")).getRowObjectsJson();
    expect(columns.find((c) => c.column_name === 'dep_delay')).toMatchObject({ data_type: 'DOUBLE', is_nullable: 'YES' });
    expect(columns.find((c) => c.column_name === 'carrier')).toMatchObject({ data_type: 'VARCHAR', is_nullable: 'NO' });
    expect(columns.find((c) => c.column_name === 'flight_date')).toMatchObject({ data_type: 'DATE', is_nullable: 'NO' });
    await expect(db.run('INSERT INTO t (year) VALUES (2013)')).rejects.toThrow(/NOT NULL/);
  });

  it('derives the BigQuery schema with the same names, modes from nullability, and lineage', () => {
    const schema = bigQueryTableSchema();
    expect(schema.find((f) => f.name === 'arr_delay')).toMatchObject({ type: 'FLOAT64', mode: 'NULLABLE' });
    expect(schema.find((f) => f.name === 'flight')).toMatchObject({ type: 'INT64', mode: 'REQUIRED' });
    expect(schema.find((f) => f.name === 'time_hour')).toMatchObject({ type: 'DATETIME' });
    expect(schema.map((f) => f.name)).toEqual(expect.arrayContaining(['flight_date', '_source_object', '_source_generation', '_source_line', '_loaded_at']));
    expect(bigQueryCanonicalCsvSchema().map((f) => f.name)).toEqual(CANONICAL_HEADER);
  });
});
