import { common } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { MigrationStore, NodeRegistry, PolicyStore, protoCodec, Repository, ShardMap, type CommitOp, type ControlStore } from "@mycelium/topology";
import type { ReplicaSchemaVersion } from "../core/schema-versions";
import type { TableSchema } from "../core/table-layout";
import type { ClusterMetadata, RouterStore } from "./router-store";

/** Keys the topology repositories do not cover. */
const keys = {
  schema: (table: string) => `router/schemas/${table}`,
  heartbeat: (id: string) => `node-heartbeat/${id}`,
};

/**
 * RouterStore over the control store, through the topology repositories (nodes/, policies/, shards/ —
 * the same records the replicator changes on failover); heartbeats are leases.
 */
export class ControlStoreRouterStore implements RouterStore {
  private readonly nodes: NodeRegistry;
  private readonly policies: PolicyStore;
  readonly shards: ShardMap;
  // Raw record access for writes that must span several kinds in one transaction.
  private readonly policyRecords: Repository<common.TablePolicy>;
  private readonly shardRecords: Repository<common.ShardInfo>;

  constructor(private readonly store: ControlStore) {
    this.nodes = new NodeRegistry(store);
    this.policies = new PolicyStore(store);
    this.shards = new ShardMap(store);
    this.policyRecords = new Repository(store, "policies/", protoCodec(common.TablePolicy));
    this.shardRecords = new Repository(store, "shards/", protoCodec(common.ShardInfo));
  }

  revision(): Promise<number> {
    return this.store.revision();
  }

  async load(): Promise<ClusterMetadata> {
    const [nodes, policies, shards, schemas, replicaSchemas] = await Promise.all([
      this.nodes.list(),
      this.policies.list(),
      this.shards.list(),
      this.store.list("router/schemas/"),
      new MigrationStore(this.store).listReplicas(), // schema versioning (core/schema-versions.ts)
    ]);
    return {
      nodes: nodes.map((found) => found.value),
      policies,
      shards,
      schemas: schemas.map((entry) => ({ ...(JSON.parse(text(entry.value)) as TableSchema) })),
      replicaSchemas,
    };
  }

  /** Copies' schema versions (schema versioning, core/schema-versions.ts). */
  recordReplicaSchemas(records: readonly ReplicaSchemaVersion[]): Promise<number> {
    const atMs = Date.now();
    return new MigrationStore(this.store).recordReplicas(records.map((record) => ({ ...record, atMs })));
  }

  async putNode(node: common.NodeInfo): Promise<void> {
    const written = await this.nodes.register(node);
    if (!written.ok) throw conflict(`node ${node.nodeId}`);
  }

  async recordHeartbeat(nodeId: string, ttlMs: number): Promise<void> {
    await this.store.acquireLease(keys.heartbeat(nodeId), nodeId, ttlMs);
  }

  async lastHeartbeats(ttlMs: number): Promise<Map<string, number>> {
    const nodes = await this.nodes.list();
    const result = new Map<string, number>();
    await Promise.all(
      nodes.map(async ({ id }) => {
        const lease = await this.store.getLease(keys.heartbeat(id));
        if (lease) result.set(id, lease.expiresAtMs - ttlMs);
      }),
    );
    return result;
  }

  async createTable(policy: common.TablePolicy, shards: common.ShardInfo[]): Promise<common.TablePolicy> {
    const policyKey = this.policyRecords.key(policy.table);
    const ops: CommitOp[] = [
      { kind: "put", key: policyKey, value: this.policyRecords.encode({ ...policy, version: 0 }), expectedVersion: 0 },
      ...shards.map((shard): CommitOp => ({ kind: "put", key: this.shardRecords.key(shard.shardId), value: this.shardRecords.encode({ ...shard, version: 0 }), expectedVersion: 0 })),
    ];
    const result = await this.store.commit(ops);
    if (!result.ok) throw new MyceliumError("ALREADY_EXISTS", `table ${policy.table} already has a policy (set concurrently?)`, { reason: "POLICY_EXISTS" });
    return { ...policy, version: result.versions[policyKey] ?? result.revision };
  }

  async updatePolicy(policy: common.TablePolicy, expectedVersion: number): Promise<common.TablePolicy> {
    const written = await this.policies.put(policy, expectedVersion);
    if (!written.ok) throw conflict(`policy of ${policy.table}`);
    return { ...policy, version: written.version };
  }

  async deleteTable(table: string): Promise<void> {
    const shards = await this.shards.list(table);
    const ops: CommitOp[] = [
      { kind: "delete", key: this.policyRecords.key(table) },
      { kind: "delete", key: keys.schema(table) },
      ...shards.map((shard): CommitOp => ({ kind: "delete", key: this.shardRecords.key(shard.shardId), expectedVersion: shard.version })),
    ];
    await this.mustCommit(ops, `table ${table}`);
  }

  async putSchema(schema: TableSchema, expectedVersion: number): Promise<void> {
    const key = keys.schema(schema.table);
    const current = await this.store.get(key);
    const currentVersion = current ? (JSON.parse(text(current.value)) as TableSchema).version : 0;
    if (currentVersion !== expectedVersion) throw conflict(`schema of ${schema.table}`);
    const result = await this.store.commit([{ kind: "put", key, value: JSON.stringify(schema), expectedVersion: current?.version ?? 0 }]);
    if (!result.ok) throw conflict(`schema of ${schema.table}`);
  }

  async deleteSchema(table: string): Promise<void> {
    await this.mustCommit([{ kind: "delete", key: keys.schema(table) }], `schema of ${table}`);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async mustCommit(ops: CommitOp[], what: string): Promise<void> {
    const result = await this.store.commit(ops);
    if (!result.ok) throw conflict(what);
  }
}

function conflict(what: string): MyceliumError {
  return new MyceliumError("ABORTED", `${what} was changed concurrently; retry`, { reason: "VERSION_CONFLICT" });
}

function text(value: Uint8Array | string): string {
  return typeof value === "string" ? value : Buffer.from(value).toString("utf8");
}
