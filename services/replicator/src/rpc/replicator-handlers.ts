import { replicator } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import type { ConflictJournal, ConflictRecord } from "../adapters/conflict-journal";
import type { ReplicationController } from "../replication-controller";

const statusToProto: Record<ConflictRecord["status"], replicator.ConflictStatus> = {
  pending: replicator.ConflictStatus.CONFLICT_STATUS_PENDING,
  applied: replicator.ConflictStatus.CONFLICT_STATUS_APPLIED,
  discarded: replicator.ConflictStatus.CONFLICT_STATUS_DISCARDED,
};

function toProto(record: ConflictRecord): replicator.Conflict {
  return replicator.Conflict.create({
    conflictId: record.conflictId,
    shardId: record.shardId,
    originNodeId: record.originNodeId,
    entry: record.entry,
    reasons: record.reasons,
    status: statusToProto[record.status],
    detectedAtMs: record.detectedAtMs,
    resolvedAtMs: record.resolvedAtMs ?? 0,
    resolvedBy: record.resolvedBy ?? "",
  });
}

export function replicatorHandlers(
  replicatorId: string,
  controller: ReplicationController,
  journal: ConflictJournal,
  applyConflict: (record: ConflictRecord) => Promise<void>,
): ServiceHandlers<typeof replicator.ReplicatorServiceService> {
  return {
    async getStatus() {
      return replicator.GetStatusResponse.create({ replicatorId, ownedShardIds: controller.owned().map((r) => r.shardId) });
    },
    async listReplication() {
      return replicator.ListReplicationResponse.create({ shards: controller.owned().map((r) => r.status()) });
    },
    async listConflicts(request) {
      const wanted = (Object.keys(statusToProto) as Array<ConflictRecord["status"]>).find((k) => statusToProto[k] === request.status);
      return replicator.ListConflictsResponse.create({ conflicts: (await journal.list(wanted)).map(toProto) });
    },
    async getConflict(request) {
      const record = await journal.get(request.conflictId);
      if (!record) throw new MyceliumError("NOT_FOUND", `no conflict ${request.conflictId}`, { reason: "NO_CONFLICT" });
      return replicator.GetConflictResponse.create({ conflict: toProto(record) });
    },
    async resolveConflict(request, call) {
      const record = await journal.get(request.conflictId);
      if (!record) throw new MyceliumError("NOT_FOUND", `no conflict ${request.conflictId}`, { reason: "NO_CONFLICT" });
      if (record.status !== "pending") throw new MyceliumError("FAILED_PRECONDITION", `conflict ${request.conflictId} is already ${record.status}`, { reason: "ALREADY_RESOLVED" });
      const resolution =
        request.resolution === replicator.ConflictStatus.CONFLICT_STATUS_APPLIED ? "applied" : request.resolution === replicator.ConflictStatus.CONFLICT_STATUS_DISCARDED ? "discarded" : null;
      if (!resolution) throw new MyceliumError("INVALID_ARGUMENT", "resolution must be APPLIED or DISCARDED");
      if (resolution === "applied") await applyConflict(record);
      const resolved = await journal.resolve(request.conflictId, resolution, call.identity.uri);
      if (!resolved) throw new MyceliumError("ABORTED", `conflict ${request.conflictId} was resolved concurrently`, { reason: "ALREADY_RESOLVED" });
      return replicator.ResolveConflictResponse.create({ conflict: toProto(resolved) });
    },
  };
}
