/** The two buckets: function sources (artifacts) and the data bucket the pipeline runs on. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { EXPORTS_PREFIX } from '../functions/core/exports.js';
import { LANDING_PREFIX } from '../functions/core/landing.js';
import { STAGING_PREFIX } from '../functions/ingest/store-upload.js';

interface BucketArgs {
  name: string;
  project: string;
  location: string;
}

const privateBucket = (args: BucketArgs) => ({
  ...args,
  uniformBucketLevelAccess: true,
  publicAccessPrevention: 'enforced',
  forceDestroy: false,
});

export class ArtifactsBucket extends pulumi.ComponentResource {
  readonly bucket: gcp.storage.Bucket;

  constructor(name: string, args: BucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:ArtifactsBucket', name, {}, opts);
    this.bucket = new gcp.storage.Bucket(
      name,
      {
        ...privateBucket(args),
        // Zips are addressed by commit; old ones are only needed to roll back, for a while.
        lifecycleRules: [{ action: { type: 'Delete' }, condition: { age: 90 } }],
      },
      { parent: this },
    );
    this.registerOutputs({ name: this.bucket.name });
  }
}

/** Lifetimes, in days, of what nothing else cleans up. */
export const DATA_LIFECYCLE = [
  // Exports are downloaded within the URL lifetime (an hour); landing/ holds raw bytes already validated or abandoned.
  { prefixes: [EXPORTS_PREFIX, LANDING_PREFIX], ageDays: 7 },
  // A staging object outlives its upload only if the instance died mid-upload.
  { prefixes: [STAGING_PREFIX], ageDays: 1 },
] as const;

export class DataBucket extends pulumi.ComponentResource {
  readonly bucket: gcp.storage.Bucket;

  constructor(name: string, args: BucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:DataBucket', name, {}, opts);
    this.bucket = new gcp.storage.Bucket(
      name,
      {
        ...privateBucket(args),
        lifecycleRules: DATA_LIFECYCLE.map(({ prefixes, ageDays }) => ({
          action: { type: 'Delete' },
          condition: { age: ageDays, matchesPrefixes: [...prefixes] },
        })),
        // Soft delete would bill every expired export and temporary object for 7 more days; records are rewritten, not deleted.
        softDeletePolicy: { retentionDurationSeconds: 0 },
      },
      { parent: this },
    );
    this.registerOutputs({ name: this.bucket.name });
  }
}
