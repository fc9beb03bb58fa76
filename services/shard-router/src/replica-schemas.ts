import type { common, router } from "@mycelium/proto";
import type { Logger } from "@mycelium/telemetry";
import type { RouterStore } from "./adapters/router-store";
import type { ReplicaSchemaVersion } from "./core/schema-versions";
import type { ShardRouter } from "./shard-router";

/**
 * Keeps the control store's record of which schema version each copy of each shard holds, from two
 * sources: the coordinator after it applied DDL (RecordReplicaSchemas), and node heartbeats (a node
 * reports the version recorded in each shard's own database, so a copy that changed without the
 * coordinator hearing of it — a restore, a coordinator that died after the DDL — is caught up). Only
 * reports that differ from the snapshot reach the store, so steady heartbeats write nothing.
 */
export class ReplicaSchemaRecorder {
  constructor(
    private readonly core: ShardRouter,
    private readonly store: RouterStore,
    private readonly log: Logger,
  ) {}

  async record(replicas: readonly router.ReplicaSchema[]): Promise<void> {
    const records = replicas.filter((replica) => replica.shardId && replica.nodeId && replica.schema).map((replica) => toRecord(replica.shardId, replica.nodeId, replica.schema!));
    if (records.length === 0) return;
    const changed = await this.store.recordReplicaSchemas(records);
    if (changed > 0) this.core.invalidate();
  }

  /** Called after the heartbeat was accepted (so the caller is the node it reports for). Never throws. */
  async observeHeartbeat(request: router.HeartbeatRequest): Promise<void> {
    try {
      const snapshot = await this.core.snapshot();
      const held = new Set(snapshot.shardsOfNode(request.nodeId).map((shard) => shard.shardId));
      const changed = request.replicas.filter((replica) => {
        if (!replica.schema || !held.has(replica.shardId)) return false;
        const known = snapshot.replicaSchemas.get(replica.shardId, request.nodeId);
        return !known || known.appliedCount < replica.schema.appliedCount;
      });
      if (changed.length === 0) return;
      await this.record(changed.map((replica) => ({ shardId: replica.shardId, nodeId: request.nodeId, schema: replica.schema })));
    } catch (error) {
      this.log.warn({ err: error, nodeId: request.nodeId }, "could not record the schema versions a heartbeat reported");
    }
  }
}

function toRecord(shardId: string, nodeId: string, schema: common.ShardSchemaState): ReplicaSchemaVersion {
  return { shardId, nodeId, table: schema.table, version: schema.version, appliedCount: schema.appliedCount, lastMigrationId: schema.lastMigrationId };
}
