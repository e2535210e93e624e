/**
 * API Gateway in front of the HTTP functions: a config from
 * openapi/openapi.yaml with each `${functions.<target>}` replaced by the
 * function's URL, served by a gateway whose account may invoke exactly those
 * functions. API keys only work once the API's own managed service is enabled.
 */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import fs from 'node:fs';
import type { FunctionName } from '../functions/core/topology.js';
import { SPEC_PATH } from '../functions/local/gateway.js';
import { backendTargets, gatewayProblems, parseSpec, withBackends, withCorsPassThrough } from './api-spec.js';
import { invoker, type DeployedFunction } from './functions.js';
import type { StackSettings } from './settings.js';

export const GATEWAY_SERVICE_ACCOUNT_ID = 'api-gateway';

interface GatewayArgs {
  settings: StackSettings;
  functions: Record<FunctionName, DeployedFunction>;
  dependsOn: pulumi.Resource[];
}

export class ApiGateway extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly managedService: pulumi.Output<string>;

  constructor(name: string, args: GatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:ApiGateway', name, {}, opts);
    const { project, region } = args.settings;
    const child = { parent: this };
    const specText = fs.readFileSync(SPEC_PATH, 'utf8');
    const problems = gatewayProblems(parseSpec(specText));
    if (problems.length) throw new Error(`openapi/openapi.yaml is not fit for API Gateway:\n${problems.join('\n')}`);
    const targets = backendTargets(specText) as FunctionName[];

    const account = new gcp.serviceaccount.Account(GATEWAY_SERVICE_ACCOUNT_ID, { project, accountId: GATEWAY_SERVICE_ACCOUNT_ID, displayName: 'API Gateway backend calls' }, child);
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    const invokers = targets.map((t) => {
      const fn = args.functions[t];
      if (!fn) throw new Error(`openapi.yaml routes to ${t}, which is not a function`);
      return invoker(`gateway-invokes-${t}`, fn, member, args.settings, child);
    });

    const api = new gcp.apigateway.Api(name, { project, apiId: name }, { ...child, dependsOn: args.dependsOn });
    const urls = pulumi.all(Object.fromEntries(targets.map((t) => [t, args.functions[t]!.url])) as Record<string, pulumi.Output<string>>);
    const cors = args.settings.corsOrigins.length > 0;
    const document = pulumi.all([urls, api.managedService]).apply(([u, service]) => {
      const spec = withBackends(specText, u);
      return Buffer.from(cors ? withCorsPassThrough(spec, service) : spec).toString('base64');
    });
    const config = new gcp.apigateway.ApiConfig(
      name,
      {
        project,
        api: api.apiId,
        // Configs are immutable: a changed spec or URL makes a new one, created before the old one goes.
        apiConfigIdPrefix: `${name}-`,
        openapiDocuments: [{ document: { path: 'openapi.yaml', contents: document } }],
        gatewayConfig: { backendConfig: { googleServiceAccount: account.email } },
      },
      { ...child, dependsOn: invokers, replaceOnChanges: ['openapiDocuments'], deleteBeforeReplace: false },
    );
    const gateway = new gcp.apigateway.Gateway(name, { project, region, gatewayId: name, apiConfig: config.id }, child);
    const keys = new gcp.projects.Service(`${name}-managed-service`, { project, service: api.managedService, disableOnDestroy: false }, child);
    this.managedService = api.managedService;
    this.url = pulumi.interpolate`https://${gateway.defaultHostname}`;
    // The smoke test's key (ci/smoke): it can call this API and nothing else.
    new gcp.projects.ApiKey(`${name}-ci-smoke`, { project, name: `${name}-ci-smoke`, displayName: 'ci/smoke', restrictions: { apiTargets: [{ service: api.managedService }] } }, { ...child, dependsOn: [keys] });
    this.registerOutputs({ url: this.url });
  }
}
