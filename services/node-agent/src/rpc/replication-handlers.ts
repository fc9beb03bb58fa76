import type { nodeagent } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";

type ReplicationMethods =
  | "streamChanges"
  | "applyChanges"
  | "getReplicaState"
  | "verifyChecksum"
  | "snapshot"
  | "restoreSnapshot"
  | "renewLease"
  | "promote"
  | "demote"
  | "ackReplication"
  | "truncateChanges"
  | "adoptPrepared";

/** The node-agent's side of replication (being built: every method answers UNIMPLEMENTED for now). */
export function replicationHandlers(): Pick<ServiceHandlers<typeof nodeagent.NodeAgentServiceService>, ReplicationMethods> {
  const unimplemented = (): never => {
    throw new MyceliumError("UNIMPLEMENTED", "replication is not available on this node yet");
  };
  return {
    streamChanges: async function* () {
      unimplemented();
    },
    applyChanges: async () => unimplemented(),
    getReplicaState: async () => unimplemented(),
    verifyChecksum: async () => unimplemented(),
    snapshot: async function* () {
      unimplemented();
    },
    restoreSnapshot: async () => unimplemented(),
    renewLease: async () => unimplemented(),
    promote: async () => unimplemented(),
    demote: async () => unimplemented(),
    ackReplication: async () => unimplemented(),
    truncateChanges: async () => unimplemented(),
    adoptPrepared: async () => unimplemented(),
  };
}
