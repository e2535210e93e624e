/** Pulumi's entry point (Pulumi.yaml `main`): the stack's settings in, its outputs out. */
import * as pulumi from '@pulumi/pulumi';
import { deployStack } from './program.js';
import { readSettings } from './settings.js';

const outputs = deployStack(readSettings(pulumi.getStack(), new pulumi.Config('flights'), new pulumi.Config('gcp')));

export const gatewayUrl = outputs.gatewayUrl;
export const artifactsBucket = outputs.artifactsBucket;
export const dataBucket = outputs.dataBucket;
export const apiManagedService = outputs.apiManagedService;
