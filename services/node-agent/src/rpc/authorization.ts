import { nodeagent } from "@mycelium/proto";
import { authorize } from "@mycelium/rpc";

/**
 * Who may call a node-agent. Only coordinators run SQL and drive 2PC; a client or another node-agent may
 * not (a node-agent never commits another node's transaction).
 */
export const nodeAgentAuthorization = authorize(nodeagent.NodeAgentServiceService, {
  // The replicator re-applies a returning primary's divergent transactions on the current primary.
  execute: ["coordinator", "replicator"],
  prepare: ["coordinator"],
  commit: ["coordinator"],
  abort: ["coordinator"],
  applySchema: ["coordinator"],
  getStatus: ["coordinator", "shard-router", "replicator", "admin"],
  listPrepared: ["coordinator", "admin"],
  // Replication: the replicator drives it; operators may look.
  streamChanges: ["replicator"],
  applyChanges: ["replicator"],
  getReplicaState: ["replicator", "admin"],
  verifyChecksum: ["replicator", "admin"],
  snapshot: ["replicator"],
  restoreSnapshot: ["replicator"],
  renewLease: ["replicator"],
  promote: ["replicator"],
  demote: ["replicator"],
  ackReplication: ["replicator"],
  truncateChanges: ["replicator"],
  adoptPrepared: ["coordinator"],
});
