import { common, fromValue, router } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import type { ShardRouter } from "../shard-router";

/** gRPC handlers: decode, call the ShardRouter, encode. */
export function shardRouterHandlers(core: ShardRouter, heartbeatIntervalMs: number): ServiceHandlers<typeof router.ShardRouterServiceService> {
  return {
    async registerNode(request, call) {
      const node = await core.registerNode(request, call.identity);
      return router.RegisterNodeResponse.create({ node, heartbeatIntervalMs });
    },
    heartbeat: (request, call) => core.heartbeat(request, call.identity),
    async listNodes() {
      return router.ListNodesResponse.create({ nodes: await core.listNodes() });
    },
    async setPolicy(request) {
      if (!request.policy) throw new MyceliumError("INVALID_ARGUMENT", "policy is required");
      return core.setPolicy(request.policy, request.expectedVersion);
    },
    async getPolicy(request) {
      return router.GetPolicyResponse.create({ policy: await core.getPolicy(request.table) });
    },
    async listPolicies() {
      return router.ListPoliciesResponse.create({ policies: await core.listPolicies() });
    },
    async deletePolicy(request) {
      await core.deletePolicy(request.table);
      return router.DeletePolicyResponse.create({});
    },
    listShards: (request) => core.listShards(request.table),
    async getShard(request) {
      return router.GetShardResponse.create({ shards: await core.getShard(request.table, request.sql, request.params.map(fromValue)) });
    },
    async route(request) {
      const statement = request.statement ?? common.Statement.create();
      return router.RouteResponse.create({ plan: await core.route(statement.sql, statement.params.map(fromValue)) });
    },
    async recordSchema(request) {
      return router.RecordSchemaResponse.create({ schemaVersion: await core.recordSchema(request.table, request.ddl) });
    },
    async getTableSchema(request) {
      const schema = await core.getTableSchema(request.table);
      if (!schema) throw new MyceliumError("NOT_FOUND", `table ${request.table} does not exist`, { reason: "NO_TABLE" });
      return router.GetTableSchemaResponse.create({ table: schema.table, ddl: schema.ddl, schemaVersion: schema.version });
    },
  };
}
