import { common, fromValue, router } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import { analyze, SqlError } from "@mycelium/sql";
import { planMigrations } from "../core/migration-planner";
import type { ReplicaSchemaRecorder } from "../replica-schemas";
import type { ShardRouter } from "../shard-router";

/** gRPC handlers: decode, call the ShardRouter, encode. */
export function shardRouterHandlers(core: ShardRouter, heartbeatIntervalMs: number, replicaSchemas?: ReplicaSchemaRecorder): ServiceHandlers<typeof router.ShardRouterServiceService> {
  return {
    async registerNode(request, call) {
      const node = await core.registerNode(request, call.identity);
      return router.RegisterNodeResponse.create({ node, heartbeatIntervalMs });
    },
    async heartbeat(request, call) {
      const response = await core.heartbeat(request, call.identity);
      await replicaSchemas?.observeHeartbeat(request);
      return response;
    },
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
    async planMigrations(request) {
      const snapshot = await core.snapshot();
      const migrations = planMigrations(request.migrations, snapshot, (sql) => {
        try {
          return analyze(sql, { dialect: "sqlite", params: [] });
        } catch (error) {
          if (error instanceof SqlError) throw new MyceliumError("INVALID_ARGUMENT", error.message, { reason: error.code });
          throw error;
        }
      });
      return router.PlanMigrationsResponse.create({ migrations });
    },
    async recordReplicaSchemas(request) {
      if (!replicaSchemas) throw new MyceliumError("UNIMPLEMENTED", "this router does not keep replica schema versions");
      await replicaSchemas.record(request.replicas);
      return router.RecordReplicaSchemasResponse.create({});
    },
  };
}
