/** The Google APIs the deployment uses, enabled before anything that needs them. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';

export const REQUIRED_APIS = [
  'apigateway.googleapis.com',
  'artifactregistry.googleapis.com',
  'bigquery.googleapis.com',
  'cloudbuild.googleapis.com',
  'cloudfunctions.googleapis.com',
  'cloudscheduler.googleapis.com',
  'iam.googleapis.com',
  // signBlob, for V4 signed URLs.
  'iamcredentials.googleapis.com',
  'logging.googleapis.com',
  'monitoring.googleapis.com',
  'pubsub.googleapis.com',
  'run.googleapis.com',
  'secretmanager.googleapis.com',
  // API Gateway's managed service: key checks and quota.
  'servicecontrol.googleapis.com',
  'servicemanagement.googleapis.com',
  'storage.googleapis.com',
] as const;

export class Apis extends pulumi.ComponentResource {
  readonly services: gcp.projects.Service[];

  constructor(name: string, project: string, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Apis', name, {}, opts);
    this.services = REQUIRED_APIS.map(
      // Destroying the stack must not switch an API off under whatever else the project runs.
      (api) => new gcp.projects.Service(api.split('.')[0]!, { project, service: api, disableOnDestroy: false }, { parent: this }),
    );
    this.registerOutputs({});
  }
}
