/**
 * The assertions every stack must pass, run against the program built
 * offline under Pulumi mocks (develop.test.ts, master.test.ts).
 */
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { flightsTableDefinition, manifestTableDefinition } from '../../functions/adapters/bigquery/tables.js';
import { loadConfig } from '../../functions/core/config.js';
import { deadLetters, FUNCTIONS, HTTP_FUNCTIONS, pushEndpoint, topology, type FunctionName, type Topology } from '../../functions/core/topology.js';
import { BASIC_ROLES, FUNCTION_GRANTS, PROJECT_ONLY_ROLES } from '../access.js';
import { effectiveSecurity, operations, parseSpec } from '../api-spec.js';
import { REQUIRED_APIS } from '../apis.js';
import { BUILD_RUNTIME_ROLES, BUILD_SERVICE_ACCOUNT_ID, DEPLOY_ROLES } from '../cloudbuild.js';
import { dataBucketName, deployedConfig, functionEnvironment, functionOwnEnvironment, DATASET } from '../function-env.js';
import { functionServiceAccountId, kebab } from '../functions.js';
import { GATEWAY_SERVICE_ACCOUNT_ID } from '../gateway.js';
import { pushServiceAccountId } from '../push-subscriptions.js';
import { readSettings, type StackSettings } from '../settings.js';
import { BURN_RATE_ALERTS, SLOS, ALERT_THRESHOLDS } from '../../functions/core/slo.js';
import { PENDING_PREFIX } from '../../functions/loader/pending.js';
import { LOG_METRICS, logMetricType } from '../monitoring/log-metrics.js';
import { burnRateAlertName } from '../monitoring/slos.js';
import type { DashboardJson } from '../monitoring/dashboard.js';
import { GCS_SERVICE_AGENT, PUBSUB_SERVICE_AGENT, runStack, stackConfig, type RecordedResource, type StackRun } from './pulumi-mocks.js';

const SOURCE_VERSION = 'abc1234';
/** What ci/deploy and the operator's secrets add to the committed stack file. */
const OVERRIDES = { 'flights:sourceVersion': SOURCE_VERSION, 'flights:chatWebhooks': [{ name: 'oncall-chat', url: 'https://chat.example.com/hooks/T0KEN' }] };

/** Every environment variable name functions/core/config.ts reads. */
function configEnvNames(): Set<string> {
  const source = fs.readFileSync(new URL('../../functions/core/config.ts', import.meta.url), 'utf8');
  return new Set([...source.matchAll(/env\.([A-Z_]+)|env, '([A-Z_]+)'/g)].map((m) => (m[1] ?? m[2])!));
}

/** Settings as the program reads them from the same stack file. */
function settingsFor(stack: string): StackSettings {
  const config = stackConfig(stack, OVERRIDES);
  const source = (ns: string) => ({
    get: (key: string) => config[`${ns}:${key}`],
    getObject: <T>(key: string) => (config[`${ns}:${key}`] === undefined ? undefined : (JSON.parse(config[`${ns}:${key}`]!) as T)),
  });
  return readSettings(stack, source('flights'), source('gcp'));
}

export function stackSuite(stack: string): void {
  let run: StackRun;
  let s: StackSettings;
  let wiring: Topology;
  const of = (type: string): RecordedResource[] => run.resources.filter((r) => r.type === type);
  const one = (type: string, name: string): RecordedResource => {
    const found = run.resources.filter((r) => r.type === type && r.name === name);
    expect(found, `${type} ${name}`).toHaveLength(1);
    return found[0]!;
  };
  const email = (accountId: string) => `${accountId}@${s.project}.iam.gserviceaccount.com`;
  const member = (accountId: string) => `serviceAccount:${email(accountId)}`;
  const fnUrl = (f: FunctionName) => one('gcp:cloudfunctionsv2/function:Function', kebab(f)).state.url as string;
  /** Every IAM binding of the stack as (resource kind, resource, role, member). */
  const bindings = () =>
    run.resources
      .filter((r) => /IamMember|IAMMember/.test(r.type))
      .map((r) => ({
        type: r.type,
        on: (r.inputs.bucket ?? r.inputs.datasetId ?? r.inputs.topic ?? r.inputs.subscription ?? r.inputs.serviceAccountId ?? r.inputs.secretId ?? r.inputs.name ?? r.inputs.project) as string,
        role: r.inputs.role as string,
        member: r.inputs.member as string,
      }));

  beforeAll(async () => {
    s = settingsFor(stack);
    wiring = topology(deployedConfig(s));
    run = await runStack(stack, OVERRIDES);
  }, 120_000);

  describe(`stack ${stack}: project, buckets, warehouse`, () => {
    it('exports the gateway URL and the artifacts bucket ci/ uploads to', () => {
      expect(run.outputs.gatewayUrl).toMatch(/^https:\/\/flights-api-.+\.gateway\.dev$/);
      expect(run.outputs.artifactsBucket).toBe(`${s.project}-flights-artifacts`);
    });

    it('enables every API it uses, and leaves them on when destroyed', () => {
      const services = of('gcp:projects/service:Service').map((r) => r.inputs);
      for (const api of REQUIRED_APIS) expect(services).toContainEqual(expect.objectContaining({ service: api, disableOnDestroy: false }));
    });

    it('keeps the data bucket private, with exports/ and landing/ expiring after 7 days, staging/ after 1, soft delete off', () => {
      const bucket = one('gcp:storage/bucket:Bucket', 'data').inputs;
      expect(bucket).toMatchObject({ name: dataBucketName(s), uniformBucketLevelAccess: true, publicAccessPrevention: 'enforced', softDeletePolicy: { retentionDurationSeconds: 0 } });
      expect(bucket.lifecycleRules).toEqual([
        { action: { type: 'Delete' }, condition: { age: 7, matchesPrefixes: ['exports/', 'landing/'] } },
        { action: { type: 'Delete' }, condition: { age: 1, matchesPrefixes: ['staging/'] } },
      ]);
      expect(one('gcp:storage/bucket:Bucket', 'artifacts').inputs).toMatchObject({ uniformBucketLevelAccess: true, publicAccessPrevention: 'enforced' });
    });

    it('creates the dataset and both tables from the BigQuery adapter’s definitions', () => {
      expect(one('gcp:bigquery/dataset:Dataset', DATASET).inputs).toMatchObject({ datasetId: DATASET, location: s.bigQueryLocation });
      const ref = { projectId: s.project, datasetId: DATASET };
      for (const [name, definition] of [
        [`${DATASET}-flights`, flightsTableDefinition(ref)],
        [`${DATASET}-manifest`, manifestTableDefinition(ref)],
      ] as const) {
        const table = one('gcp:bigquery/table:Table', name).inputs;
        expect(table.tableId).toBe(definition.tableReference!.tableId);
        expect(JSON.parse(table.schema)).toEqual(definition.schema!.fields);
        expect(table.clusterings).toEqual(definition.clustering!.fields);
        expect(table.deletionProtection).toBe(true);
      }
      expect(one('gcp:bigquery/table:Table', `${DATASET}-flights`).inputs.timePartitioning).toEqual({ type: 'DAY', field: 'flight_date' });
    });
  });

  describe(`stack ${stack}: event wiring equals topology(config)`, () => {
    it('creates exactly the topology’s topics', () => {
      expect(of('gcp:pubsub/topic:Topic').map((r) => r.inputs.name).sort()).toEqual([...wiring.topics].sort());
    });

    it('notifies OBJECT_FINALIZE as JSON_API_V1 for each topology prefix, after granting the Cloud Storage agent publish on the topic', () => {
      const notifications = of('gcp:storage/notification:Notification').map((r) => r.inputs);
      expect(notifications.map((n) => ({ prefix: n.objectNamePrefix, topic: n.topic }))).toEqual(
        wiring.notifications.map((n) => ({ prefix: n.prefix, topic: `projects/${s.project}/topics/${n.topic}` })),
      );
      for (const n of notifications) expect(n).toMatchObject({ bucket: dataBucketName(s), payloadFormat: 'JSON_API_V1', eventTypes: ['OBJECT_FINALIZE'] });
      for (const topic of new Set(wiring.notifications.map((n) => n.topic))) {
        expect(bindings()).toContainEqual(expect.objectContaining({ on: topic, role: 'roles/pubsub.publisher', member: `serviceAccount:${GCS_SERVICE_AGENT}` }));
      }
    });

    it('pushes each topology subscription to its function at /projects/P/topics/T, with its filter, backoff, ack deadline and dead-letter policy', () => {
      const pushed = of('gcp:pubsub/subscription:Subscription').filter((r) => r.inputs.pushConfig);
      expect(pushed.map((r) => r.inputs.name).sort()).toEqual(wiring.subscriptions.map((w) => w.name).sort());
      for (const sub of wiring.subscriptions) {
        const got = one('gcp:pubsub/subscription:Subscription', sub.name).inputs;
        expect(got.topic).toBe(sub.topic);
        expect(got.filter ?? '').toBe(sub.filter ?? '');
        expect(got.pushConfig.pushEndpoint).toBe(pushEndpoint(fnUrl(sub.target), s.project, sub.topic));
        expect(got.pushConfig.pushEndpoint.startsWith(fnUrl(sub.target))).toBe(true);
        expect(got.pushConfig.pushEndpoint).toMatch(/\/projects\/[^/]+\/topics\/[^/]+$/);
        expect(got.pushConfig.oidcToken).toEqual({ serviceAccountEmail: email(pushServiceAccountId(sub)), audience: fnUrl(sub.target) });
        expect(got.retryPolicy).toEqual({ minimumBackoff: `${sub.minBackoffMs / 1000}s`, maximumBackoff: `${sub.maxBackoffMs / 1000}s` });
        expect(got.ackDeadlineSeconds).toBe(sub.ackDeadlineSeconds);
        expect(got.ackDeadlineSeconds).toBeGreaterThan(s.sizing[sub.target].timeoutSeconds);
        expect(got.expirationPolicy).toEqual({ ttl: '' });
        if (deadLetters(sub)) {
          expect(got.deadLetterPolicy).toEqual({ deadLetterTopic: `projects/${s.project}/topics/${sub.deadLetterTopic}`, maxDeliveryAttempts: sub.maxDeliveryAttempts });
          expect(sub.maxDeliveryAttempts).toBeGreaterThanOrEqual(5);
          expect(sub.maxDeliveryAttempts).toBeLessThanOrEqual(100);
          expect(bindings()).toContainEqual({ type: 'gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember', on: sub.name, role: 'roles/pubsub.subscriber', member: `serviceAccount:${PUBSUB_SERVICE_AGENT}` });
        } else {
          expect(got.deadLetterPolicy).toBeUndefined();
        }
      }
      // Filters are what keep the loader and the validator off each other's notifications.
      expect(wiring.subscriptions.filter((w) => w.filter).map((w) => w.target).sort()).toEqual(['loadFlights', 'validateUpload']);
    });

    it('lets the Pub/Sub agent publish dead letters, and keeps them on a pull subscription', () => {
      const deadLetter = deployedConfig(s).deadLetterTopic;
      expect(bindings()).toContainEqual(expect.objectContaining({ on: deadLetter, role: 'roles/pubsub.publisher', member: `serviceAccount:${PUBSUB_SERVICE_AGENT}` }));
      for (const retained of wiring.retained) {
        const got = one('gcp:pubsub/subscription:Subscription', retained.name).inputs;
        expect(got).toMatchObject({ topic: retained.topic, expirationPolicy: { ttl: '' }, messageRetentionDuration: '604800s' });
        expect(got.pushConfig).toBeUndefined();
      }
    });

    it('schedules each topology tick with Cloud Scheduler, with its data (never empty, so the framework sees a push) and attributes', () => {
      const jobs = of('gcp:cloudscheduler/job:Job').map((r) => r.inputs);
      expect(
        jobs.map((j) => ({ name: j.name, cron: j.schedule, topic: j.pubsubTarget.topicName, data: Buffer.from(j.pubsubTarget.data, 'base64').toString(), attributes: j.pubsubTarget.attributes })),
      ).toEqual(wiring.schedules.map((w) => ({ name: w.name, cron: w.cron, topic: `projects/${s.project}/topics/${w.topic}`, data: w.data, attributes: w.attributes })));
      for (const j of jobs) expect(Buffer.from(j.pubsubTarget.data, 'base64').length).toBeGreaterThan(0);
    });
  });

  describe(`stack ${stack}: functions`, () => {
    it('deploys every registered function on Node 20 from this commit’s zip, sized by the stack file', () => {
      expect(of('gcp:cloudfunctionsv2/function:Function')).toHaveLength(FUNCTIONS.length);
      for (const f of FUNCTIONS) {
        const fn = one('gcp:cloudfunctionsv2/function:Function', kebab(f)).inputs;
        expect(fn.buildConfig).toMatchObject({ runtime: 'nodejs20', entryPoint: f, source: { storageSource: { bucket: `${s.project}-flights-artifacts`, object: `${SOURCE_VERSION}/${f}-${stack}.zip` } } });
        const size = s.sizing[f];
        expect(fn.serviceConfig).toMatchObject({
          availableMemory: size.memory,
          timeoutSeconds: size.timeoutSeconds,
          minInstanceCount: size.minInstances,
          maxInstanceCount: size.maxInstances,
          maxInstanceRequestConcurrency: size.concurrency,
          serviceAccountEmail: email(functionServiceAccountId(f)),
        });
        expect(fn.eventTrigger).toBeUndefined();
        expect(fn.serviceConfig.secretEnvironmentVariables).toEqual([{ key: 'CURSOR_SECRET', projectId: s.project, secret: s.cursorSecretId, version: 'latest' }]);
      }
      const sizing = (stackConfig(stack)['flights:functions'] && JSON.parse(stackConfig(stack)['flights:functions']!)) as Record<string, { timeoutSeconds?: number }>;
      expect(s.sizing.upload.timeoutSeconds).toBe(sizing.upload!.timeoutSeconds);
    });

    it('gives every function an environment whose names functions/core/config.ts reads and from which it computes the deployed wiring', () => {
      const names = configEnvNames();
      for (const f of FUNCTIONS) {
        const env = one('gcp:cloudfunctionsv2/function:Function', kebab(f)).inputs.serviceConfig.environmentVariables as Record<string, string>;
        expect(env).toEqual({ ...functionEnvironment(s), ...functionOwnEnvironment(f, s.sizing[f]) });
        for (const name of Object.keys(env)) expect(names, name).toContain(name);
        expect(names).toContain('CURSOR_SECRET');
        const seen = loadConfig({ ...env, CURSOR_SECRET: 'x' });
        expect(seen).toMatchObject({ profile: 'cloud', store: 'gcs', bus: 'pubsub', warehouse: 'bigquery', projectId: s.project, bucket: dataBucketName(s) });
        expect(topology(seen)).toEqual(wiring);
      }
    });

    it('serves every gateway deadline within the function’s timeout', () => {
      const spec = parseSpec(Buffer.from(one('gcp:apigateway/apiConfig:ApiConfig', 'flights-api').inputs.openapiDocuments[0].document.contents, 'base64').toString());
      for (const { path, operation } of operations(spec)) {
        const target = FUNCTIONS.find((f) => operation['x-google-backend']!.address === fnUrl(f))!;
        expect(s.sizing[target].timeoutSeconds, `${path} → ${target}`).toBeGreaterThanOrEqual(operation['x-google-backend']!.deadline!);
      }
    });
  });

  describe(`stack ${stack}: least privilege`, () => {
    it('binds no basic role and nothing to allUsers or allAuthenticatedUsers', () => {
      for (const b of bindings()) {
        expect(BASIC_ROLES.has(b.role), `${b.role} for ${b.member}`).toBe(false);
        expect(b.member).not.toMatch(/^allUsers$|^allAuthenticatedUsers$/);
      }
    });

    it('gives each function its own account holding exactly its grants, project-wide only where no resource-level role exists', () => {
      for (const f of FUNCTIONS) {
        const held = bindings().filter((b) => b.member === member(functionServiceAccountId(f)));
        expect(held.map((b) => b.role).sort(), f).toEqual(FUNCTION_GRANTS[f].map((g) => g.role).sort());
        for (const b of held.filter((h) => h.type === 'gcp:projects/iAMMember:IAMMember')) expect(PROJECT_ONLY_ROLES.has(b.role), `${f}: ${b.role}`).toBe(true);
      }
      const tokenCreators = bindings().filter((b) => b.role === 'roles/iam.serviceAccountTokenCreator');
      // Signing accounts may sign as themselves only.
      for (const b of tokenCreators) expect(b.on).toBe(`projects/${s.project}/serviceAccounts/${b.member.replace('serviceAccount:', '')}`);
      expect(bindings().filter((b) => b.type === 'gcp:projects/iAMMember:IAMMember' && !b.member.includes(BUILD_SERVICE_ACCOUNT_ID)).every((b) => PROJECT_ONLY_ROLES.has(b.role))).toBe(true);
    });

    it('lets the gateway invoke exactly the HTTP functions, and each push account exactly its function', () => {
      const invokers = bindings().filter((b) => b.role === 'roles/run.invoker');
      expect(invokers.filter((b) => b.member === member(GATEWAY_SERVICE_ACCOUNT_ID)).map((b) => b.on).sort()).toEqual(HTTP_FUNCTIONS.map(kebab).sort());
      for (const sub of wiring.subscriptions) {
        expect(invokers.filter((b) => b.member === member(pushServiceAccountId(sub))).map((b) => b.on)).toEqual([kebab(sub.target)]);
      }
      expect(invokers).toHaveLength(HTTP_FUNCTIONS.length + wiring.subscriptions.length);
    });

    it('gives the build its own account with an admin role for each kind of resource the program manages, and nothing else', () => {
      const held = bindings().filter((b) => b.member === member(BUILD_SERVICE_ACCOUNT_ID));
      const projectRoles = held.filter((b) => b.type === 'gcp:projects/iAMMember:IAMMember').map((b) => b.role).sort();
      const modules = new Set(run.resources.filter((r) => r.type.startsWith('gcp:')).map((r) => r.type.split(/[:/]/)[1]!));
      expect(new Set(Object.keys(DEPLOY_ROLES))).toEqual(modules);
      expect(projectRoles).toEqual([...new Set([...[...modules].map((m) => DEPLOY_ROLES[m]!), ...BUILD_RUNTIME_ROLES])].sort());
      expect(held.filter((b) => b.type !== 'gcp:projects/iAMMember:IAMMember').map((b) => `${b.on} ${b.role}`).sort()).toEqual(
        s.buildSecretIds.map((id) => `${id} roles/secretmanager.secretAccessor`).sort(),
      );
    });

    it('triggers Cloud Build on its own branch with cloudbuild.yaml, running as the build account', () => {
      const trigger = one('gcp:cloudbuild/trigger:Trigger', `build-${stack}`).inputs;
      expect(trigger).toMatchObject({
        filename: 'cloudbuild.yaml',
        github: { owner: s.github!.owner, name: s.github!.name, push: { branch: `^${stack}$` } },
        serviceAccount: `projects/${s.project}/serviceAccounts/${email(BUILD_SERVICE_ACCOUNT_ID)}`,
      });
    });
  });

  describe(`stack ${stack}: API Gateway`, () => {
    it('configures the gateway from openapi.yaml with the functions’ URLs as backends and a key on every route but health', () => {
      const config = one('gcp:apigateway/apiConfig:ApiConfig', 'flights-api').inputs;
      expect(config.gatewayConfig.backendConfig.googleServiceAccount).toBe(email(GATEWAY_SERVICE_ACCOUNT_ID));
      expect(config.apiConfigIdPrefix).toBe('flights-api-');
      const spec = parseSpec(Buffer.from(config.openapiDocuments[0].document.contents, 'base64').toString());
      const ops = operations(spec);
      expect(ops.length).toBeGreaterThan(0);
      for (const { path, operation } of ops) {
        expect(HTTP_FUNCTIONS.map(fnUrl)).toContain(operation['x-google-backend']!.address);
        if (path !== '/health') expect(effectiveSecurity(spec, operation), path).not.toEqual([]);
      }
      expect(one('gcp:apigateway/gateway:Gateway', 'flights-api').inputs).toMatchObject({ region: s.region, apiConfig: expect.stringContaining('/configs/flights-api-') });
    });

    it('passes CORS preflights on to the HTTP functions exactly when the stack allows origins, and tells the functions which', () => {
      const spec = parseSpec(Buffer.from(one('gcp:apigateway/apiConfig:ApiConfig', 'flights-api').inputs.openapiDocuments[0].document.contents, 'base64').toString());
      const passThrough = s.corsOrigins.length ? [{ name: run.outputs.apiManagedService, allowCors: true }] : undefined;
      expect(spec['x-google-endpoints']).toEqual(passThrough);
      for (const f of HTTP_FUNCTIONS) {
        const env = one('gcp:cloudfunctionsv2/function:Function', kebab(f)).inputs.serviceConfig.environmentVariables as Record<string, string>;
        expect(loadConfig({ ...env, CURSOR_SECRET: 'x' }).corsOrigins, f).toEqual(s.corsOrigins);
      }
    });

    it('enables the API’s managed service, without which no key is accepted, and makes a key for ci/smoke restricted to it', () => {
      const managed = run.outputs.apiManagedService as string;
      expect(one('gcp:projects/service:Service', 'flights-api-managed-service').inputs.service).toBe(managed);
      expect(one('gcp:projects/apiKey:ApiKey', 'flights-api-ci-smoke').inputs.restrictions).toEqual({ apiTargets: [{ service: managed }] });
    });
  });

  describe(`stack ${stack}: monitoring`, () => {
    const sloName = (id: string) => `projects/${s.project}/services/flights-ingest/serviceLevelObjectives/${id}`;
    const policy = (name: string) => one('gcp:monitoring/alertPolicy:AlertPolicy', name).inputs;
    const channels = () => of('gcp:monitoring/notificationChannel:NotificationChannel').map((r) => ({ type: r.inputs.type, id: r.state.id as string, labels: r.inputs.labels }));

    it('has a notification channel per configured e-mail and chat webhook', () => {
      expect(channels().filter((c) => c.type === 'email').map((c) => c.labels.email_address)).toEqual(s.alertEmails);
      // Pulumi's wire form of a secret (the labels map holding the URL): the engine keeps it encrypted in the state.
      const secret = (v: any) => (v?.['4dabf18193072939515e22adb298388d'] === '1b47061264138c4ac30d75fd1eb44270' ? v.value : `not a secret: ${JSON.stringify(v)}`);
      expect(channels().filter((c) => c.type === 'webhook_tokenauth').map((c) => secret(c.labels)?.url)).toEqual(s.chatWebhooks.map((w) => w.url));
      expect(s.chatWebhooks).toHaveLength(1);
    });

    it('defines the log-based metrics on the functions’ structured lines', () => {
      for (const spec of LOG_METRICS) {
        const metric = one('gcp:logging/metric:Metric', spec.id).inputs;
        expect(metric.filter).toContain('resource.type="cloud_run_revision"');
        expect(metric.filter).toContain(typeof spec.message === 'string' ? `jsonPayload.message="${spec.message}"` : 'jsonPayload.message=~');
        expect(metric.metricDescriptor.valueType).toBe(spec.valueField ? 'DISTRIBUTION' : 'INT64');
        if (spec.valueField) expect(metric.valueExtractor).toBe(`EXTRACT(jsonPayload.${spec.valueField})`);
        expect(Object.keys(metric.labelExtractors ?? {})).toEqual(Object.keys(spec.labels ?? {}));
      }
      // The freshness SLO's threshold falls on a bucket edge, so "good" is exact.
      expect(one('gcp:logging/metric:Metric', 'upload_to_loaded_seconds').inputs.bucketOptions.explicitBuckets.bounds).toContain(120);
    });

    it('defines the three SLOs with their goals, 28-day windows and request-based SLIs', () => {
      expect(one('gcp:monitoring/customService:CustomService', 'flights-ingest').inputs.serviceId).toBe('flights-ingest');
      const slos = Object.fromEntries(of('gcp:monitoring/slo:Slo').map((r) => [r.inputs.sloId, r.inputs]));
      expect(Object.keys(slos).sort()).toEqual(['availability', 'freshness', 'upload-latency']);
      for (const slo of SLOS) expect(slos[slo.id]).toMatchObject({ goal: slo.goal, rollingPeriodDays: 28, service: 'flights-ingest' });
      expect(slos['upload-latency']!.requestBasedSli.distributionCut).toEqual({ distributionFilter: expect.stringContaining('run.googleapis.com/request_latencies'), range: { max: 300 } });
      expect(slos['upload-latency']!.requestBasedSli.distributionCut.distributionFilter).toContain('"service_name"="upload"');
      expect(slos.availability!.requestBasedSli.goodTotalRatio).toEqual({
        badServiceFilter: expect.stringMatching(new RegExp(`"service"="${run.outputs.apiManagedService}".*"response_code_class"="5xx"`)),
        totalServiceFilter: expect.stringContaining(`"service"="${run.outputs.apiManagedService}"`),
      });
      expect(slos.freshness!.requestBasedSli.distributionCut).toEqual({ distributionFilter: expect.stringContaining(logMetricType('upload_to_loaded_seconds')), range: { max: 120 } });
    });

    it('alerts on each SLO’s burn rate over a long and a short window together: 14.4× 1 h/5 min and 6× 6 h/30 min page, 1× 3 d/6 h opens a ticket', () => {
      expect(BURN_RATE_ALERTS.map((a) => [a.burnRate, a.longWindowSeconds, a.shortWindowSeconds, a.severity])).toEqual([
        [14.4, 3600, 300, 'page'],
        [6, 21600, 1800, 'page'],
        [1, 259200, 21600, 'ticket'],
      ]);
      const emails = channels().filter((c) => c.type === 'email').map((c) => c.id);
      for (const slo of SLOS) {
        for (const alert of BURN_RATE_ALERTS) {
          const p = policy(burnRateAlertName(slo.id, alert));
          expect(p.combiner).toBe('AND');
          expect(p.conditions.map((c: any) => c.conditionThreshold)).toEqual(
            [alert.longWindowSeconds, alert.shortWindowSeconds].map((w) => ({ filter: `select_slo_burn_rate("${sloName(slo.id)}", "${w}s")`, comparison: 'COMPARISON_GT', thresholdValue: alert.burnRate, duration: '0s' })),
          );
          expect(p.notificationChannels.sort()).toEqual((alert.severity === 'page' ? channels().map((c) => c.id) : emails).sort());
        }
      }
    });

    it('alerts on uploads per hour outside 400–600, gateway 5xx above 1%, dead letters, old unacked messages, failed loads and exports', () => {
      const band = policy('uploads-per-hour');
      expect(band.combiner).toBe('OR');
      expect(band.conditions.map((c: any) => [c.conditionThreshold.comparison, c.conditionThreshold.thresholdValue, c.conditionThreshold.aggregations[0].alignmentPeriod])).toEqual([
        ['COMPARISON_GT', 600, '3600s'],
        ['COMPARISON_LT', 400, '3600s'],
      ]);
      const ratio = policy('gateway-5xx').conditions[0].conditionThreshold;
      expect(ratio).toMatchObject({ thresholdValue: ALERT_THRESHOLDS.gateway5xxRatio, filter: expect.stringContaining('"5xx"'), denominatorFilter: expect.stringContaining(run.outputs.apiManagedService as string) });
      expect(ratio.denominatorFilter).not.toContain('5xx');
      expect(policy('dead-letter-backlog').conditions[0].conditionThreshold).toMatchObject({ thresholdValue: 0, filter: expect.stringContaining(wiring.retained[0]!.name) });
      const unacked = policy('oldest-unacked').conditions[0].conditionThreshold;
      for (const sub of wiring.subscriptions) expect(unacked.filter).toContain(`"${sub.name}"`);
      expect(policy('loader-failures').conditions[0].conditionThreshold.filter).toContain(logMetricType('loader_failures'));
      expect(policy('export-failures').conditions[0].conditionThreshold.filter).toContain(logMetricType('export_failures'));
      expect(policy('function-errors').conditions[0].conditionThreshold.thresholdValue).toBe(ALERT_THRESHOLDS.functionErrorRatio);
    });

    it('alerts when BigQuery holds loads back for 30 min: at least 5 flushes held and more than 97% of all, with what to do', () => {
      const p = policy('loads-held');
      const { windowSeconds, minHeld, heldRatio } = ALERT_THRESHOLDS.loadsHeld;
      expect(p.combiner).toBe('AND');
      const window = [{ alignmentPeriod: `${windowSeconds}s`, perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_SUM' }];
      const held = `metric.type="${logMetricType('loader_flushes')}" resource.type="cloud_run_revision" metric.label."outcome"="held"`;
      expect(p.conditions.map((c: any) => c.conditionThreshold)).toEqual([
        { filter: held, comparison: 'COMPARISON_GT', thresholdValue: minHeld - 1, duration: '0s', aggregations: window },
        {
          filter: held,
          comparison: 'COMPARISON_GT',
          thresholdValue: heldRatio,
          duration: '0s',
          aggregations: window,
          denominatorFilter: `metric.type="${logMetricType('loader_flushes')}" resource.type="cloud_run_revision"`,
          denominatorAggregations: window,
        },
      ]);
      // The lease spaces flush starts by 60 s: 31 fit in the window, and 30 of 31 held must not fire.
      expect(deployedConfig(s).flushSpacingMs).toBe(60_000);
      const most = Math.floor(windowSeconds / 60) + 1;
      expect([(most - 1) / most > heldRatio, most / most > heldRatio]).toEqual([false, true]);
      expect(p.documentation.mimeType).toBe('text/markdown');
      expect(p.documentation.content).toContain(PENDING_PREFIX);
      expect(p.documentation.content).toMatch(/`npm run dlq:redrive` is not the fix/);
      expect(p.documentation.content).toContain('flush stopped: the warehouse is unavailable');
      expect(p.documentation.content).toContain('file held: BigQuery failed its job itself');
    });

    it('draws a dashboard of SLO compliance and budget, burn rates against their thresholds, uploads against the band, 5xx, freshness, loader lag, held flushes and dead letters', () => {
      const json = JSON.parse(one('gcp:monitoring/dashboard:Dashboard', 'dashboard').inputs.dashboardJson) as DashboardJson;
      const widgets = json.mosaicLayout!.tiles!.map((t) => t.widget!);
      const filters = JSON.stringify(widgets);
      for (const slo of SLOS) {
        expect(filters).toContain(JSON.stringify(`select_slo_compliance("${sloName(slo.id)}")`).slice(1, -1));
        expect(filters).toContain(JSON.stringify(`select_slo_budget_fraction("${sloName(slo.id)}")`).slice(1, -1));
      }
      const thresholds = (title: string) => widgets.find((w) => w.title?.startsWith(title))!.xyChart!.thresholds!.map((t) => t.value);
      expect(thresholds('Uploads per hour').sort()).toEqual([400, 600]);
      expect(thresholds(`${SLOS[0]!.displayName}: burn rate`)).toEqual([14.4, 6, 1]);
      expect(thresholds('Gateway 5xx ratio')).toEqual([0.01]);
      expect(thresholds('Freshness')).toEqual([120]);
      expect(thresholds('Loader flushes held')).toEqual([ALERT_THRESHOLDS.loadsHeld.minHeld - 1]);
      expect(filters).toContain(JSON.stringify(`metric.label."outcome"="held"`).slice(1, -1));
      expect(filters).toContain(wiring.retained[0]!.name);
      expect(filters).toContain(deployedConfig(s).loaderSubscription);
      // Tiles never overlap.
      const cells = new Set(json.mosaicLayout!.tiles!.map((t) => `${t.xPos},${t.yPos}`));
      expect(cells.size).toBe(widgets.length);
    });
  });
}
