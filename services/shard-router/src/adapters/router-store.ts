import type { common } from "@mycelium/proto";
import type { ReplicaSchemaVersion } from "../core/schema-versions";
import type { TableSchema } from "../core/table-layout";

export interface ClusterMetadata {
  nodes: common.NodeInfo[];
  policies: common.TablePolicy[];
  shards: common.ShardInfo[];
  schemas: TableSchema[];
  /** The schema version of each copy of each shard (absent: no copy has reported). */
  replicaSchemas?: ReplicaSchemaVersion[];
}

/**
 * What the shard-router needs from the control store (declared here, by the consumer). Every change is
 * compare-and-set, so router replicas sharing one store never overwrite each other.
 */
export interface RouterStore {
  /** Increases on every change; cheap, so the router polls it to know when to reload. */
  revision(): Promise<number>;
  load(): Promise<ClusterMetadata>;
  putNode(node: common.NodeInfo): Promise<void>;
  /**
   * A node is alive while its heartbeat lease is held: renewing a lease does not change the store's
   * revision, so heartbeats do not make every router reload the shard map.
   */
  recordHeartbeat(nodeId: string, ttlMs: number): Promise<void>;
  /** When each node last renewed its heartbeat lease (absent: never, or long ago). */
  lastHeartbeats(ttlMs: number): Promise<Map<string, number>>;
  /** Creates the policy and its shards atomically; ALREADY_EXISTS if the table has a policy. */
  createTable(policy: common.TablePolicy, shards: common.ShardInfo[]): Promise<common.TablePolicy>;
  /** Replaces a policy whose stored version is `expectedVersion`; ABORTED otherwise. */
  updatePolicy(policy: common.TablePolicy, expectedVersion: number): Promise<common.TablePolicy>;
  /** Deletes policy, shards and schema of a table. */
  deleteTable(table: string): Promise<void>;
  /** Stores a table's schema if its stored version is `expectedVersion` (0: none yet); ABORTED otherwise. */
  putSchema(schema: TableSchema, expectedVersion: number): Promise<void>;
  deleteSchema(table: string): Promise<void>;
  /** Stores copies' schema versions; a report not newer than the stored one (appliedCount) is ignored. Returns how many changed. */
  recordReplicaSchemas(records: readonly ReplicaSchemaVersion[]): Promise<number>;
  close(): Promise<void>;
}
