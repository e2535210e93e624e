/**
 * The pipeline's own account and its trigger. Each stack's project builds its
 * own branch (`develop` previews, `master` deploys; cloudbuild.yaml decides on
 * $BRANCH_NAME). The account holds what `pulumi up` of this program needs:
 * an admin role per kind of resource the program manages (DEPLOY_ROLES,
 * checked against the resources in infra/ tests), never a basic role.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { StackSettings } from './settings.js';

export const BUILD_SERVICE_ACCOUNT_ID = 'cloud-build-deployer';

/** Pulumi type module (`gcp:<module>/…`) → the role that lets a deploy create, change and delete it. */
export const DEPLOY_ROLES: Readonly<Record<string, string>> = {
  apigateway: 'roles/apigateway.admin',
  bigquery: 'roles/bigquery.admin',
  cloudbuild: 'roles/cloudbuild.builds.editor',
  cloudfunctionsv2: 'roles/cloudfunctions.admin',
  // The functions' services: their run.invoker bindings.
  cloudrunv2: 'roles/run.admin',
  cloudscheduler: 'roles/cloudscheduler.admin',
  logging: 'roles/logging.configWriter',
  monitoring: 'roles/monitoring.editor',
  projects: 'roles/resourcemanager.projectIamAdmin',
  pubsub: 'roles/pubsub.admin',
  secretmanager: 'roles/secretmanager.admin',
  serviceaccount: 'roles/iam.serviceAccountAdmin',
  storage: 'roles/storage.admin',
};

/** What a deploy needs beyond managing resources. */
export const BUILD_RUNTIME_ROLES = [
  // Deploying a function or a gateway to run as another account is acting as that account.
  'roles/iam.serviceAccountUser',
  'roles/serviceusage.serviceUsageAdmin',
  // Enabling the API's managed service, and API keys restricted to it.
  'roles/serviceusage.apiKeysAdmin',
  'roles/logging.logWriter',
] as const;

export const buildBranch = (s: StackSettings): string => s.stack;

export class CloudBuild extends pulumi.ComponentResource {
  readonly account: gcp.serviceaccount.Account;

  constructor(name: string, args: { settings: StackSettings; artifactsBucket: pulumi.Input<string> }, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:CloudBuild', name, {}, opts);
    const s = args.settings;
    const child = { parent: this };
    this.account = new gcp.serviceaccount.Account(BUILD_SERVICE_ACCOUNT_ID, { project: s.project, accountId: BUILD_SERVICE_ACCOUNT_ID, displayName: 'Cloud Build: test, package, deploy' }, child);
    const member = pulumi.interpolate`serviceAccount:${this.account.email}`;
    const roles = [...new Set([...Object.values(DEPLOY_ROLES), ...BUILD_RUNTIME_ROLES])].sort();
    for (const role of roles) new gcp.projects.IAMMember(`build-${role.split('/')[1]!.replace(/\./g, '-')}`, { project: s.project, role, member }, child);
    for (const secretId of s.buildSecretIds) {
      new gcp.secretmanager.SecretIamMember(`build-reads-${secretId}`, { project: s.project, secretId, role: 'roles/secretmanager.secretAccessor', member }, child);
    }
    if (s.github) {
      const branch = buildBranch(s);
      new gcp.cloudbuild.Trigger(
        `${name}-${branch}`,
        {
          project: s.project,
          location: 'global',
          name: `flights-${branch}`,
          description: `${branch}: cloudbuild.yaml on every push`,
          github: { owner: s.github.owner, name: s.github.name, push: { branch: `^${branch}$` } },
          filename: 'cloudbuild.yaml',
          serviceAccount: pulumi.interpolate`projects/${s.project}/serviceAccounts/${this.account.email}`,
          substitutions: { _REGION: s.region, _PULUMI_STACK: s.stack, _ARTIFACTS_BUCKET: args.artifactsBucket },
          includeBuildLogs: 'INCLUDE_BUILD_LOGS_WITH_STATUS',
        },
        child,
      );
    }
    this.registerOutputs({});
  }
}
