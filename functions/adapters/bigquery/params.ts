/**
 * TypedParam → the REST `QueryParameter` resource. Types are spelled out
 * rather than left to the client's inference, which would send a column's
 * integer as FLOAT64 or a DATETIME as STRING.
 */
import type { JobMetadata } from '@google-cloud/bigquery';
import type { ParamType, Scalar, TypedParam } from '../../core/query-spec.js';

export type QueryParameter = NonNullable<NonNullable<NonNullable<JobMetadata['configuration']>['query']>['queryParameters']>[number];

/** `timestamp` columns hold local wall-clock times: BigQuery's DATETIME (see schema.ts). */
const TYPES: Record<ParamType, string> = {
  integer: 'INT64',
  number: 'FLOAT64',
  string: 'STRING',
  timestamp: 'DATETIME',
  date: 'DATE',
};

/** The REST API carries every scalar value as a string. */
const text = (v: Scalar): string => String(v);

export function queryParameter(p: TypedParam): QueryParameter {
  const type = TYPES[p.type];
  if (Array.isArray(p.value)) {
    return {
      name: p.name,
      parameterType: { type: 'ARRAY', arrayType: { type } },
      parameterValue: { arrayValues: p.value.map((v) => ({ value: text(v) })) },
    };
  }
  // A parameter without a value is NULL.
  return { name: p.name, parameterType: { type }, parameterValue: p.value === null ? {} : { value: text(p.value) } };
}
