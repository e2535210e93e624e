/** The whole deployment of one stack, one component per concern. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { topology } from '../functions/core/topology.js';
import { Apis } from './apis.js';
import { Warehouse } from './bigquery.js';
import { CloudBuild } from './cloudbuild.js';
import { artifactsBucketName, dataBucketName, DATASET, deployedConfig } from './function-env.js';
import { Functions } from './functions.js';
import { ApiGateway } from './gateway.js';
import { BucketNotifications, Topics } from './messaging.js';
import { Monitoring } from './monitoring/index.js';
import { PushSubscriptions } from './push-subscriptions.js';
import { Schedules } from './scheduler.js';
import type { StackSettings } from './settings.js';
import { ArtifactsBucket, DataBucket } from './storage.js';

export interface StackOutputs {
  gatewayUrl: pulumi.Output<string>;
  artifactsBucket: pulumi.Output<string>;
  dataBucket: pulumi.Output<string>;
  apiManagedService: pulumi.Output<string>;
}

export function deployStack(s: StackSettings): StackOutputs {
  const config = deployedConfig(s);
  const wiring = topology(config);
  const apis = new Apis('apis', s.project);
  const after = { dependsOn: apis.services };
  const projectNumber = gcp.organizations.getProjectOutput({ projectId: s.project }).number;

  const artifacts = new ArtifactsBucket('artifacts', { name: artifactsBucketName(s), project: s.project, location: s.region }, after);
  const data = new DataBucket('data', { name: dataBucketName(s), project: s.project, location: s.region }, after);
  const warehouse = new Warehouse(DATASET, { project: s.project, datasetId: DATASET, location: s.bigQueryLocation }, after);
  const topics = new Topics('topics', { project: s.project, projectNumber, topology: wiring, deadLetterTopic: config.deadLetterTopic }, after);
  new BucketNotifications('notifications', { project: s.project, bucket: data.bucket, topology: wiring, topics: topics.byName }, after);

  const functions = new Functions(
    'functions',
    {
      settings: s,
      artifactsBucket: artifacts.bucket,
      dataBucket: data.bucket,
      dataset: warehouse.dataset,
      topics: { deadLetter: topics.byName[config.deadLetterTopic]!, exports: topics.byName[config.exports.topic]!, notifications: topics.byName[config.notificationTopic]! },
    },
    after,
  );
  new PushSubscriptions('push', { settings: s, projectNumber, topology: wiring, topics: topics.byName, functions: functions.byName }, after);
  new Schedules('schedules', { project: s.project, region: s.region, topology: wiring, topics: topics.byName }, after);
  const gateway = new ApiGateway('flights-api', { settings: s, functions: functions.byName, dependsOn: apis.services });
  new CloudBuild('build', { settings: s, artifactsBucket: artifacts.bucket.name }, after);
  new Monitoring('monitoring', { settings: s, topology: wiring, loaderSubscription: config.loaderSubscription, managedService: gateway.managedService, dependsOn: [...apis.services, gateway] });

  return { gatewayUrl: gateway.url, artifactsBucket: artifacts.bucket.name, dataBucket: data.bucket.name, apiManagedService: gateway.managedService };
}
