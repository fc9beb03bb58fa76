import { nodeagent } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import type { NodeAgent } from "../node-agent";

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

/**
 * The node-agent's side of replication: decode, call the ReplicaManager, encode. With the fault point
 * node.isolate-on-sigusr2 armed, SIGUSR2 toggles a simulated partition from the replicator: every
 * replication call fails as if the node were unreachable, while clients' statements still run.
 */
export function replicationHandlers(core: NodeAgent, isolated: () => boolean = () => false): Pick<ServiceHandlers<typeof nodeagent.NodeAgentServiceService>, ReplicationMethods> {
  const replication = core.replication;
  const handlers: Pick<ServiceHandlers<typeof nodeagent.NodeAgentServiceService>, ReplicationMethods> = {
    streamChanges: (request, call) => replication.streamChanges(request, call.signal),
    applyChanges: (request) => replication.applyChanges(request),
    getReplicaState: (request) => replication.replicaState(request),
    verifyChecksum: (request) => replication.verifyChecksum(request.shardId),
    snapshot: (request) => replication.snapshot(request.shardId),
    restoreSnapshot: (request) => replication.restoreSnapshot(request),
    async renewLease(request) {
      replication.renewLease(request);
      return nodeagent.RenewLeaseResponse.create({});
    },
    promote: (request) => replication.promote(request),
    demote: (request) => replication.demote(request, (shardId) => core.abortShard(shardId)),
    async ackReplication(request) {
      replication.acknowledge(request);
      return nodeagent.AckReplicationResponse.create({});
    },
    async truncateChanges(request) {
      await replication.truncate(request);
      return nodeagent.TruncateChangesResponse.create({});
    },
    async adoptPrepared(request) {
      await replication.adopt(request);
      return nodeagent.AdoptPreparedResponse.create({});
    },
  };
  const partitioned = (): never => {
    throw new MyceliumError("UNAVAILABLE", "node is partitioned from the replicator (fault injection)");
  };
  return {
    ...handlers,
    // A stream already open is cut too: nothing more leaves once the partition starts.
    streamChanges: async function* (request, call) {
      if (isolated()) partitioned();
      for await (const message of handlers.streamChanges(request, call)) {
        if (isolated()) partitioned();
        yield message;
      }
    },
    applyChanges: (request, call) => (isolated() ? partitioned() : handlers.applyChanges(request, call)),
    getReplicaState: (request, call) => (isolated() ? partitioned() : handlers.getReplicaState(request, call)),
    renewLease: (request, call) => (isolated() ? partitioned() : handlers.renewLease(request, call)),
    promote: (request, call) => (isolated() ? partitioned() : handlers.promote(request, call)),
    demote: (request, call) => (isolated() ? partitioned() : handlers.demote(request, call)),
    ackReplication: (request, call) => (isolated() ? partitioned() : handlers.ackReplication(request, call)),
  };
}
