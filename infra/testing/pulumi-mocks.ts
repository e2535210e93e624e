/**
 * Runs the Pulumi program offline: `pulumi.runtime.setMocks` stands in for the
 * engine, answering each resource with outputs shaped like Google's (account
 * emails, function URLs, topic ids), and records every resource and call so a
 * test can assert the whole deployment.
 */
import * as pulumi from '@pulumi/pulumi';
import fs from 'node:fs';
import { parse } from 'yaml';

export interface RecordedResource {
  type: string;
  name: string;
  // Inputs as the engine receives them: plain JSON.
  inputs: Record<string, any>;
  state: Record<string, any>;
}

export interface StackRun {
  stack: string;
  project: string;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
}

export const PROJECT_NUMBER = '123456789012';
export const GCS_SERVICE_AGENT = `service-${PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com`;
export const PUBSUB_SERVICE_AGENT = `service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com`;

/** The outputs Google computes that the program reads back. */
function computed(type: string, inputs: Record<string, any>, project: string): Record<string, unknown> {
  switch (type) {
    case 'gcp:serviceaccount/account:Account': {
      const email = `${inputs.accountId}@${project}.iam.gserviceaccount.com`;
      return { email, name: `projects/${project}/serviceAccounts/${email}`, member: `serviceAccount:${email}` };
    }
    case 'gcp:cloudfunctionsv2/function:Function':
      return { url: `https://${inputs.location}-${project}.cloudfunctions.net/${inputs.name}` };
    case 'gcp:pubsub/topic:Topic':
      return { id: `projects/${project}/topics/${inputs.name}` };
    case 'gcp:apigateway/api:Api':
      return { managedService: `${inputs.apiId}-0abc123def456.apigateway.${project}.cloud.goog` };
    case 'gcp:apigateway/apiConfig:ApiConfig':
      return { id: `projects/${project}/locations/global/apis/${inputs.api}/configs/${inputs.apiConfigIdPrefix}1` };
    case 'gcp:apigateway/gateway:Gateway':
      return { defaultHostname: `${inputs.gatewayId}-1a2b3c4d.uc.gateway.dev` };
    case 'gcp:monitoring/slo:Slo':
      return { name: `projects/${project}/services/${inputs.service}/serviceLevelObjectives/${inputs.sloId}` };
    case 'gcp:monitoring/notificationChannel:NotificationChannel':
      return { id: `projects/${project}/notificationChannels/${inputs.type}-${inputs.displayName}` };
    default:
      return {};
  }
}

/** Stack config as `pulumi config` stores it: namespaced keys, objects as JSON text. */
export function stackConfig(stack: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const file = new URL(`../Pulumi.${stack}.yaml`, import.meta.url);
  const config = { ...(parse(fs.readFileSync(file, 'utf8')) as { config: Record<string, unknown> }).config, ...overrides };
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

/** Imports the program (infra/index.ts) for `stack` under mocks; call once per test file. */
export async function runStack(stack: string, overrides: Record<string, unknown>): Promise<StackRun> {
  const config = stackConfig(stack, overrides);
  const project = config['gcp:project']!;
  const resources: RecordedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: ({ type, name, inputs, id }) => {
        const extra = computed(type, inputs, project);
        const state = { name: inputs.name ?? name, ...inputs, ...extra };
        resources.push({ type, name, inputs, state });
        return { id: (extra.id as string | undefined) ?? id ?? `${name}_id`, state };
      },
      call: ({ token, inputs }) => {
        if (token === 'gcp:organizations/getProject:getProject') return { projectId: project, number: PROJECT_NUMBER };
        if (token === 'gcp:storage/getProjectServiceAccount:getProjectServiceAccount') return { emailAddress: GCS_SERVICE_AGENT };
        if (token === 'gcp:secretmanager/getSecret:getSecret') return { secretId: inputs.secretId, name: `projects/${project}/secrets/${inputs.secretId}` };
        throw new Error(`the program called ${token}, which the mocks do not answer`);
      },
    },
    'flights',
    stack,
    false,
  );
  pulumi.runtime.setAllConfig(config);
  const program = (await import('../index.js')) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) outputs[key] = await new Promise((resolve) => (value as pulumi.Output<unknown>).apply(resolve));
  }
  // Resources whose inputs wait on other outputs register later: drain the queue.
  await pulumi.runtime.disconnect();
  return { stack, project, resources, outputs };
}
