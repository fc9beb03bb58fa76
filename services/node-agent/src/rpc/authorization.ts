import { nodeagent } from "@mycelium/proto";
import { authorize } from "@mycelium/rpc";

/**
 * Who may call a node-agent. Only coordinators run SQL and drive 2PC; a client or another node-agent may
 * not (a node-agent never commits another node's transaction).
 */
export const nodeAgentAuthorization = authorize(nodeagent.NodeAgentServiceService, {
  execute: ["coordinator"],
  prepare: ["coordinator"],
  commit: ["coordinator"],
  abort: ["coordinator"],
  applySchema: ["coordinator"],
  getStatus: ["coordinator", "shard-router", "replicator", "admin"],
  listPrepared: ["coordinator", "admin"],
});
