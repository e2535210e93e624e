/**
 * Least privilege, as data: what each function's own service account may do,
 * each grant on the one resource it needs. Only BigQuery's job creation has no
 * resource-level form (jobs belong to the project), so it is the one
 * project-wide role a function holds.
 */
import type { FunctionName } from '../functions/core/topology.js';

export type Grant =
  | { on: 'dataBucket'; role: 'roles/storage.objectUser' | 'roles/storage.objectViewer' }
  | { on: 'dataset'; role: 'roles/bigquery.dataEditor' | 'roles/bigquery.dataViewer' }
  | { on: 'project'; role: 'roles/bigquery.jobUser' }
  | { on: 'topic'; topic: 'deadLetter' | 'exports' | 'notifications'; role: 'roles/pubsub.publisher' }
  | { on: 'topic'; topic: 'notifications'; role: 'roles/pubsub.viewer' }
  /** V4 signed URLs are signed through `signBlob` on the function's own account. */
  | { on: 'self'; role: 'roles/iam.serviceAccountTokenCreator' }
  | { on: 'cursorSecret'; role: 'roles/secretmanager.secretAccessor' };

/** Roles that exist only project-wide; any other project-level grant to a function is a mistake. */
export const PROJECT_ONLY_ROLES: ReadonlySet<string> = new Set(['roles/bigquery.jobUser']);
/** Basic roles: a binding to any of them fails the policy test, whoever holds it. */
export const BASIC_ROLES: ReadonlySet<string> = new Set(['roles/owner', 'roles/editor', 'roles/viewer']);

const objects = { on: 'dataBucket', role: 'roles/storage.objectUser' } as const;
const jobs = { on: 'project', role: 'roles/bigquery.jobUser' } as const;
const signs = { on: 'self', role: 'roles/iam.serviceAccountTokenCreator' } as const;
const deadLetters = { on: 'topic', topic: 'deadLetter', role: 'roles/pubsub.publisher' } as const;
// Every function builds the runtime, which refuses to start in the cloud without CURSOR_SECRET.
const cursor = { on: 'cursorSecret', role: 'roles/secretmanager.secretAccessor' } as const;

export const FUNCTION_GRANTS: Record<FunctionName, readonly Grant[]> = {
  upload: [objects, cursor],
  uploads: [objects, signs, cursor],
  validateUpload: [objects, cursor],
  // The loader's flush loads batches and quarantines what fails for good, publishing a dead letter.
  loadFlights: [objects, { on: 'dataset', role: 'roles/bigquery.dataEditor' }, jobs, deadLetters, cursor],
  // Its reconcile ticks also announce stranded landing/ files to the validator and queue stranded exports again.
  flushLoads: [
    objects,
    { on: 'dataset', role: 'roles/bigquery.dataEditor' },
    jobs,
    deadLetters,
    { on: 'topic', topic: 'notifications', role: 'roles/pubsub.publisher' },
    { on: 'topic', topic: 'exports', role: 'roles/pubsub.publisher' },
    cursor,
  ],
  deadLetter: [objects, cursor],
  // GET /health (served by getdata) reads an object's metadata and checks the notification topic exists.
  getdata: [
    { on: 'dataset', role: 'roles/bigquery.dataViewer' },
    jobs,
    { on: 'dataBucket', role: 'roles/storage.objectViewer' },
    { on: 'topic', topic: 'notifications', role: 'roles/pubsub.viewer' },
    cursor,
  ],
  exports: [objects, { on: 'topic', topic: 'exports', role: 'roles/pubsub.publisher' }, signs, cursor],
  // EXPORT DATA writes the files to the bucket with the caller's credentials.
  runExport: [objects, { on: 'dataset', role: 'roles/bigquery.dataViewer' }, jobs, cursor],
};
