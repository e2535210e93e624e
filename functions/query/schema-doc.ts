/** `GET /schema`: what can be asked of /getdata, derived from the schema module and the grammar. */
import { COLUMNS, DERIVED_COLUMNS } from '../core/schema.js';
import { AGGREGATES, DEFAULT_LIMIT, MAX_LIMIT, operatorsFor } from './grammar.js';
import { FORMATS } from './formats.js';

export function describeSchema() {
  return {
    table: 'flights',
    columns: [
      ...COLUMNS.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, description: c.description, kind: 'data', operators: operatorsFor(c.type) })),
      ...DERIVED_COLUMNS.map((c) => ({
        name: c.name,
        type: c.type,
        nullable: false,
        description: c.description,
        kind: c.name.startsWith('_') ? 'lineage' : 'derived',
        operators: operatorsFor(c.type),
      })),
    ],
    aggregates: AGGREGATES,
    formats: FORMATS,
    limit: { default: DEFAULT_LIMIT, max: MAX_LIMIT },
    grammar: 'PostgREST: col=op.value, not.op, in.(a,b), is.null, select=, order=col.desc.nullslast, limit=, cursor=, count=exact, format=; from/to on flight_date',
  };
}
