import { replicator } from "@mycelium/proto";
import { authorize } from "@mycelium/rpc";

export const replicatorAuthorization = authorize(replicator.ReplicatorServiceService, {
  getStatus: ["admin", "coordinator", "shard-router", "replicator"],
  listReplication: ["admin", "coordinator", "shard-router", "replicator"],
  listConflicts: ["admin"],
  getConflict: ["admin"],
  resolveConflict: ["admin"],
});
