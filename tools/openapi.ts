/** `npm run openapi`: rewrites openapi/openapi.yaml's derived parts after a schema change. */
import fs from 'node:fs';
import { SPEC_PATH } from '../functions/local/gateway.js';
import { withGetdataParameters } from '../functions/query/openapi-params.js';

fs.writeFileSync(SPEC_PATH, withGetdataParameters(fs.readFileSync(SPEC_PATH, 'utf8')));
console.log(`updated ${SPEC_PATH}`);
