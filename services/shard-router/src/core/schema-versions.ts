import { MyceliumError } from "@mycelium/rpc";

/** What the router knows of one copy's schema (a control-store ReplicaSchemaRecord). */
export interface ReplicaSchemaVersion {
  shardId: string;
  nodeId: string;
  table: string;
  version: number;
  appliedCount: number;
  lastMigrationId: string;
}

/** Replica schema versions by shard and node. Immutable once built. */
export class ReplicaSchemaIndex {
  private readonly byReplica = new Map<string, ReplicaSchemaVersion>();

  constructor(records: readonly ReplicaSchemaVersion[]) {
    for (const record of records) this.byReplica.set(`${record.shardId}@${record.nodeId}`, record);
  }

  get(shardId: string, nodeId: string): ReplicaSchemaVersion | undefined {
    return this.byReplica.get(`${shardId}@${nodeId}`);
  }

  /** A copy that never reported is taken to have no schema (version 0). */
  version(shardId: string, nodeId: string): number {
    return this.get(shardId, nodeId)?.version ?? 0;
  }

  get size(): number {
    return this.byReplica.size;
  }
}

/**
 * Whether a copy's schema matches its table's. Versions count DDL steps, so any difference — behind
 * (a migration has not reached it) or ahead (it ran a migration not yet recorded for the table) —
 * means the statement was analysed against a schema the copy does not have.
 */
export function compareSchemaVersions(replicaVersion: number, tableVersion: number): "same" | "behind" | "ahead" {
  if (replicaVersion === tableVersion) return "same";
  return replicaVersion < tableVersion ? "behind" : "ahead";
}

/**
 * The refusal for a statement that would run on a copy with another schema version than its table:
 * UNAVAILABLE (it clears when the migration finishes; `mycelium migrate` finishes an interrupted one),
 * reason SCHEMA_VERSION, naming shard, node and both versions.
 */
export function schemaVersionError(table: string, shardId: string, nodeId: string, replicaVersion: number, tableVersion: number): MyceliumError | null {
  const relation = compareSchemaVersions(replicaVersion, tableVersion);
  if (relation === "same") return null;
  return new MyceliumError(
    "UNAVAILABLE",
    `shard ${shardId} on node ${nodeId} has schema version ${replicaVersion} of table ${table}, which is at version ${tableVersion} (the copy is ${relation}): either a copy that follows through replication has not reported the change yet (it does with its next heartbeat; one-shot statements are retried meanwhile), or a migration of ${table} is in progress or was interrupted; it is served again when the migration finishes (run \`mycelium migrate\` again to finish an interrupted one, \`mycelium migrate status\` to see what is left)`,
    {
      reason: "SCHEMA_VERSION",
      details: { table, shardId, nodeId, replicaVersion: String(replicaVersion), tableVersion: String(tableVersion) },
    },
  );
}
