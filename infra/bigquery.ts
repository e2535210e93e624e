/** The dataset and its two tables, from the definitions the BigQuery adapter exports (never written twice). */
import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { flightsTableDefinition, manifestTableDefinition, type TableResource } from '../functions/adapters/bigquery/tables.js';

interface WarehouseArgs {
  project: string;
  datasetId: string;
  location: string;
}

/** gcp.bigquery.Table arguments from a `tables.insert` resource. */
export function tableArgs(definition: TableResource): gcp.bigquery.TableArgs {
  const ref = definition.tableReference!;
  return {
    project: ref.projectId!,
    datasetId: ref.datasetId!,
    tableId: ref.tableId!,
    description: definition.description ?? undefined,
    schema: JSON.stringify(definition.schema?.fields ?? []),
    timePartitioning: definition.timePartitioning
      ? { type: definition.timePartitioning.type!, field: definition.timePartitioning.field ?? undefined }
      : undefined,
    clusterings: definition.clustering?.fields ?? undefined,
    // The rows are the product: `pulumi destroy` must not drop them.
    deletionProtection: true,
  };
}

export class Warehouse extends pulumi.ComponentResource {
  readonly dataset: gcp.bigquery.Dataset;
  readonly flights: gcp.bigquery.Table;
  readonly manifest: gcp.bigquery.Table;

  constructor(name: string, args: WarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('flights:infra:Warehouse', name, {}, opts);
    this.dataset = new gcp.bigquery.Dataset(
      name,
      { project: args.project, datasetId: args.datasetId, location: args.location, deleteContentsOnDestroy: false },
      { parent: this },
    );
    const ref = { projectId: args.project, datasetId: args.datasetId };
    const children = { parent: this, dependsOn: [this.dataset] };
    this.flights = new gcp.bigquery.Table(`${name}-flights`, tableArgs(flightsTableDefinition(ref)), children);
    this.manifest = new gcp.bigquery.Table(`${name}-manifest`, tableArgs(manifestTableDefinition(ref)), children);
    this.registerOutputs({ dataset: this.dataset.datasetId });
  }
}
