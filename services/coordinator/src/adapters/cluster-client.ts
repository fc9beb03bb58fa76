import { common, nodeagent, router } from "@mycelium/proto";
import type { CallOptions, ClientPool } from "@mycelium/rpc";

/**
 * The coordinator's calls to the rest of the cluster: the router (routing, schema, nodes) and the
 * node-agents (execution and 2PC). Deadlines are set by the caller per phase.
 */
export class ClusterClient {
  private readonly routerClient;
  private nodesCache: { atMs: number; nodes: Map<string, common.NodeInfo> } | null = null;

  constructor(
    private readonly clients: ClientPool,
    routerAddress: string,
  ) {
    this.routerClient = clients.service(router.ShardRouterServiceService, routerAddress);
  }

  async route(statement: common.Statement, options: CallOptions): Promise<router.RoutePlan> {
    const response = await this.routerClient.route(router.RouteRequest.create({ statement }), { ...options, idempotent: true });
    if (!response.plan) throw new Error("router returned no plan");
    return response.plan;
  }

  async recordSchema(table: string, ddl: string[], options: CallOptions): Promise<number> {
    const response = await this.routerClient.recordSchema(router.RecordSchemaRequest.create({ table, ddl }), { ...options, idempotent: true });
    return response.schemaVersion;
  }

  /** Node addresses, cached briefly (recovery needs them for decision records, which store node ids). */
  async nodeAddress(nodeId: string): Promise<string | undefined> {
    const now = Date.now();
    if (!this.nodesCache || now - this.nodesCache.atMs > 2000 || !this.nodesCache.nodes.has(nodeId)) {
      const response = await this.routerClient.listNodes(router.ListNodesRequest.create({}), { idempotent: true, deadlineMs: 5000 });
      this.nodesCache = { atMs: now, nodes: new Map(response.nodes.map((n) => [n.nodeId, n])) };
    }
    return this.nodesCache.nodes.get(nodeId)?.address;
  }

  private shardsCache: { atMs: number; shards: Map<string, common.ShardInfo> } | null = null;

  /** The current primary of a shard (after a failover, no longer the node a decision record names). */
  async shardPrimary(shardId: string): Promise<{ nodeId: string; address: string; epoch: number } | undefined> {
    const now = Date.now();
    if (!this.shardsCache || now - this.shardsCache.atMs > 1000 || !this.shardsCache.shards.has(shardId)) {
      const response = await this.routerClient.listShards(router.ListShardsRequest.create({ table: "" }), { idempotent: true, deadlineMs: 5000 });
      this.shardsCache = { atMs: now, shards: new Map(response.shards.map((s) => [s.shardId, s])) };
    }
    const shard = this.shardsCache.shards.get(shardId);
    if (!shard) return undefined;
    const address = await this.nodeAddress(shard.primaryNodeId);
    return address ? { nodeId: shard.primaryNodeId, address, epoch: shard.epoch } : undefined;
  }

  node(address: string) {
    return this.clients.service(nodeagent.NodeAgentServiceService, address);
  }
}
