import { router } from "@mycelium/proto";
import { authorize } from "@mycelium/rpc";

/** Who may call what on the shard-router (DESIGN.md §4). Only admin changes policies. */
export const shardRouterAuthorization = authorize(router.ShardRouterServiceService, {
  registerNode: ["node-agent"],
  heartbeat: ["node-agent"],
  listNodes: ["admin", "coordinator", "replicator", "shard-router"],
  setPolicy: ["admin"],
  getPolicy: ["admin", "coordinator", "replicator", "shard-router", "client"],
  listPolicies: ["admin", "coordinator", "replicator", "shard-router", "client"],
  deletePolicy: ["admin"],
  listShards: ["admin", "coordinator", "replicator", "shard-router", "node-agent"],
  getShard: ["admin", "coordinator", "client"],
  route: ["admin", "coordinator"],
  recordSchema: ["coordinator"],
  getTableSchema: ["admin", "coordinator", "replicator", "node-agent"],
  planMigrations: ["admin", "coordinator"],
  recordReplicaSchemas: ["coordinator"],
});
