/** Notification channels from stack config: e-mail for tickets and pages, chat webhooks for pages. */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import type { StackSettings } from '../settings.js';

export class NotificationChannels extends pulumi.ComponentResource {
  readonly email: pulumi.Output<string>[];
  readonly chat: pulumi.Output<string>[];

  constructor(name: string, s: StackSettings, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:NotificationChannels', name, {}, opts);
    const child = { parent: this };
    this.email = s.alertEmails.map(
      (address) => new gcp.monitoring.NotificationChannel(`email-${address}`, { project: s.project, type: 'email', displayName: address, labels: { email_address: address } }, child).id,
    );
    this.chat = s.chatWebhooks.map(
      // The URL carries the chat's token: kept secret in the state as in the stack file (`pulumi config set --secret`).
      (hook) => new gcp.monitoring.NotificationChannel(`webhook-${hook.name}`, { project: s.project, type: 'webhook_tokenauth', displayName: hook.name, labels: { url: pulumi.secret(hook.url) } }, child).id,
    );
    this.registerOutputs({});
  }
}
