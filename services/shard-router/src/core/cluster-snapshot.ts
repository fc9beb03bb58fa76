import { common } from "@mycelium/proto";
import type { ClusterMetadata } from "../adapters/router-store";
import type { RoutingSnapshot } from "./route-planner";
import { ReplicaSchemaIndex } from "./schema-versions";
import { TableLayout } from "./table-layout";

/** The cluster's metadata at one revision, indexed for routing. Immutable. */
export class ClusterSnapshot implements RoutingSnapshot {
  private readonly layouts = new Map<string, TableLayout>();
  private readonly nodesById: Map<string, common.NodeInfo>;
  readonly replicaSchemas: ReplicaSchemaIndex;

  constructor(readonly revision: number, readonly metadata: ClusterMetadata) {
    this.replicaSchemas = new ReplicaSchemaIndex(metadata.replicaSchemas ?? []);
    this.nodesById = new Map(metadata.nodes.map((node) => [node.nodeId, node]));
    const schemas = new Map(metadata.schemas.map((schema) => [schema.table, schema]));
    for (const policy of metadata.policies) {
      const shards = metadata.shards.filter((shard) => shard.table === policy.table);
      this.layouts.set(policy.table, new TableLayout(policy, shards, schemas.get(policy.table) ?? null));
    }
  }

  layout(table: string): TableLayout | undefined {
    return this.layouts.get(table);
  }

  get tables(): TableLayout[] {
    return [...this.layouts.values()];
  }

  node(nodeId: string): common.NodeInfo | undefined {
    return this.nodesById.get(nodeId);
  }

  nodeAddress(nodeId: string): string | undefined {
    return this.nodesById.get(nodeId)?.address;
  }

  replicaSchemaVersion(shardId: string, nodeId: string): number {
    return this.replicaSchemas.version(shardId, nodeId);
  }

  get nodes(): common.NodeInfo[] {
    return this.metadata.nodes;
  }

  /** Every shard replica placed on a node, for its heartbeat answer. */
  shardsOfNode(nodeId: string): common.ShardInfo[] {
    return this.metadata.shards.filter((shard) => shard.replicaNodeIds.includes(nodeId));
  }
}
