/**
 * Every function of functions/index.ts as a Cloud Functions gen2 function,
 * each running as its own service account holding only FUNCTION_GRANTS.
 * None has an Eventarc trigger: event functions are invoked by the push
 * subscriptions (push-subscriptions.ts).
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { EVENT_FUNCTIONS, FUNCTIONS, PUSH_ACK_DEADLINE_SECONDS, type FunctionName } from '../functions/core/topology.js';
import { FUNCTION_GRANTS, type Grant } from './access.js';
import { CURSOR_SECRET_ENV, functionEnvironment, functionOwnEnvironment } from './function-env.js';
import type { StackSettings } from './settings.js';

/** Cloud Run (and so gen2 function and account) names are lowercase: `loadFlights` deploys as `load-flights`. */
export const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const functionServiceAccountId = (f: FunctionName): string => `fn-${kebab(f)}`;
/** The zip ci/package builds and ci/deploy uploads for this commit. */
export const sourceObject = (s: StackSettings, f: FunctionName): string => `${s.sourceVersion}/${f}-${s.stack}.zip`;

export function checkSizing(s: StackSettings): void {
  for (const f of EVENT_FUNCTIONS) {
    // Pub/Sub would redeliver a message whose push is still running.
    if (s.sizing[f].timeoutSeconds >= PUSH_ACK_DEADLINE_SECONDS) {
      throw new Error(`flights:functions.${f}.timeoutSeconds must stay under the push ack deadline (${PUSH_ACK_DEADLINE_SECONDS} s)`);
    }
  }
  for (const f of FUNCTIONS) {
    const { concurrency, cpu } = s.sizing[f];
    if (concurrency > 1 && Number(cpu) < 1) throw new Error(`flights:functions.${f}: concurrency above 1 needs at least 1 vCPU`);
  }
}

interface FunctionsArgs {
  settings: StackSettings;
  artifactsBucket: gcp.storage.Bucket;
  dataBucket: gcp.storage.Bucket;
  dataset: gcp.bigquery.Dataset;
  topics: Record<'deadLetter' | 'exports' | 'notifications', gcp.pubsub.Topic>;
}

export interface DeployedFunction {
  fn: gcp.cloudfunctionsv2.Function;
  account: gcp.serviceaccount.Account;
  url: pulumi.Output<string>;
}

export class Functions extends pulumi.ComponentResource {
  readonly byName: Record<FunctionName, DeployedFunction>;

  constructor(name: string, args: FunctionsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Functions', name, {}, opts);
    const s = args.settings;
    checkSizing(s);
    const secret = gcp.secretmanager.getSecretOutput({ project: s.project, secretId: s.cursorSecretId }, { parent: this });
    this.byName = Object.fromEntries(FUNCTIONS.map((f) => [f, this.deploy(f, args, secret.secretId)])) as Record<FunctionName, DeployedFunction>;
    this.registerOutputs({});
  }

  private deploy(f: FunctionName, args: FunctionsArgs, cursorSecret: pulumi.Output<string>): DeployedFunction {
    const s = args.settings;
    const size = s.sizing[f];
    const id = kebab(f);
    const account = new gcp.serviceaccount.Account(
      functionServiceAccountId(f),
      { project: s.project, accountId: functionServiceAccountId(f), displayName: `flights function ${f}` },
      { parent: this },
    );
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    const grants = FUNCTION_GRANTS[f].map((grant) => this.grant(`${id}-${grantName(grant)}`, grant, member, account, args, cursorSecret));
    const fn = new gcp.cloudfunctionsv2.Function(
      id,
      {
        project: s.project,
        location: s.region,
        name: id,
        buildConfig: {
          runtime: 'nodejs20',
          entryPoint: f,
          source: { storageSource: { bucket: args.artifactsBucket.name, object: sourceObject(s, f) } },
        },
        serviceConfig: {
          availableMemory: size.memory,
          availableCpu: size.cpu,
          timeoutSeconds: size.timeoutSeconds,
          minInstanceCount: size.minInstances,
          maxInstanceCount: size.maxInstances,
          maxInstanceRequestConcurrency: size.concurrency,
          serviceAccountEmail: account.email,
          environmentVariables: { ...functionEnvironment(s), ...functionOwnEnvironment(f, size) },
          secretEnvironmentVariables: [{ key: CURSOR_SECRET_ENV, projectId: s.project, secret: cursorSecret, version: 'latest' }],
          // The gateway and Pub/Sub reach it over the internet; IAM (run.invoker) is what keeps everyone else out.
          ingressSettings: 'ALLOW_ALL',
          allTrafficOnLatestRevision: true,
        },
      },
      // Its first start reads the secret and the bucket: the grants come first.
      { parent: this, dependsOn: grants },
    );
    return { fn, account, url: fn.url };
  }

  private grant(
    name: string,
    grant: Grant,
    member: pulumi.Output<string>,
    account: gcp.serviceaccount.Account,
    args: FunctionsArgs,
    cursorSecret: pulumi.Output<string>,
  ): pulumi.CustomResource {
    const project = args.settings.project;
    const opts = { parent: this };
    switch (grant.on) {
      case 'dataBucket':
        return new gcp.storage.BucketIAMMember(name, { bucket: args.dataBucket.name, role: grant.role, member }, opts);
      case 'dataset':
        return new gcp.bigquery.DatasetIamMember(name, { project, datasetId: args.dataset.datasetId, role: grant.role, member }, opts);
      case 'project':
        return new gcp.projects.IAMMember(name, { project, role: grant.role, member }, opts);
      case 'topic':
        return new gcp.pubsub.TopicIAMMember(name, { project, topic: args.topics[grant.topic].name, role: grant.role, member }, opts);
      case 'self':
        return new gcp.serviceaccount.IAMMember(name, { serviceAccountId: account.name, role: grant.role, member }, opts);
      case 'cursorSecret':
        return new gcp.secretmanager.SecretIamMember(name, { project, secretId: cursorSecret, role: grant.role, member }, opts);
    }
  }
}

const grantName = (grant: Grant): string => `${grant.on}${'topic' in grant ? `-${grant.topic}` : ''}-${grant.role.split('/')[1]!.replace(/\./g, '-')}`;

/** `roles/run.invoker` on exactly one function, for one caller. */
export function invoker(name: string, target: DeployedFunction, member: pulumi.Input<string>, settings: StackSettings, opts: pulumi.CustomResourceOptions): gcp.cloudrunv2.ServiceIamMember {
  return new gcp.cloudrunv2.ServiceIamMember(name, { project: settings.project, location: settings.region, name: target.fn.name, role: 'roles/run.invoker', member }, opts);
}
