import { common } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import type { CommitOp, ControlStore } from "@mycelium/topology";
import type { TableSchema } from "../core/table-layout";
import type { ClusterMetadata, RouterStore } from "./router-store";

/** Key layout of the router's metadata in the control store. */
const keys = {
  node: (id: string) => `router/nodes/${id}`,
  policy: (table: string) => `router/policies/${table}`,
  shard: (table: string, shardId: string) => `router/shards/${table}/${shardId}`,
  shardsOf: (table: string) => `router/shards/${table}/`,
  schema: (table: string) => `router/schemas/${table}`,
  heartbeat: (id: string) => `node-heartbeat/${id}`,
};

/** RouterStore over the control store: protobuf records in the key-value map, heartbeats as leases. */
export class ControlStoreRouterStore implements RouterStore {
  constructor(private readonly store: ControlStore) {}

  revision(): Promise<number> {
    return this.store.revision();
  }

  async load(): Promise<ClusterMetadata> {
    const [nodes, policies, shards, schemas] = await Promise.all([
      this.store.list("router/nodes/"),
      this.store.list("router/policies/"),
      this.store.list("router/shards/"),
      this.store.list("router/schemas/"),
    ]);
    return {
      nodes: nodes.map((entry) => common.NodeInfo.decode(bytes(entry.value))),
      policies: policies.map((entry) => ({ ...common.TablePolicy.decode(bytes(entry.value)), version: entry.version })),
      shards: shards.map((entry) => ({ ...common.ShardInfo.decode(bytes(entry.value)), version: entry.version })),
      schemas: schemas.map((entry) => ({ ...(JSON.parse(text(entry.value)) as TableSchema) })),
    };
  }

  async putNode(node: common.NodeInfo): Promise<void> {
    await this.mustCommit([{ kind: "put", key: keys.node(node.nodeId), value: common.NodeInfo.encode(node).finish() }], "node");
  }

  async recordHeartbeat(nodeId: string, ttlMs: number): Promise<void> {
    await this.store.acquireLease(keys.heartbeat(nodeId), nodeId, ttlMs);
  }

  async lastHeartbeats(ttlMs: number): Promise<Map<string, number>> {
    const nodes = await this.store.list("router/nodes/");
    const result = new Map<string, number>();
    await Promise.all(
      nodes.map(async (entry) => {
        const id = entry.key.slice("router/nodes/".length);
        const lease = await this.store.getLease(keys.heartbeat(id));
        if (lease) result.set(id, lease.expiresAtMs - ttlMs);
      }),
    );
    return result;
  }

  async createTable(policy: common.TablePolicy, shards: common.ShardInfo[]): Promise<common.TablePolicy> {
    const ops: CommitOp[] = [
      { kind: "put", key: keys.policy(policy.table), value: common.TablePolicy.encode(policy).finish(), expectedVersion: 0 },
      ...shards.map((shard): CommitOp => ({ kind: "put", key: keys.shard(policy.table, shard.shardId), value: common.ShardInfo.encode(shard).finish(), expectedVersion: 0 })),
    ];
    const result = await this.store.commit(ops);
    if (!result.ok) throw new MyceliumError("ALREADY_EXISTS", `table ${policy.table} already has a policy (set concurrently?)`, { reason: "POLICY_EXISTS" });
    return { ...policy, version: result.versions[keys.policy(policy.table)] ?? result.revision };
  }

  async updatePolicy(policy: common.TablePolicy, expectedVersion: number): Promise<common.TablePolicy> {
    const key = keys.policy(policy.table);
    const result = await this.store.commit([{ kind: "put", key, value: common.TablePolicy.encode(policy).finish(), expectedVersion }]);
    if (!result.ok) throw conflict(`policy of ${policy.table}`);
    return { ...policy, version: result.versions[key] ?? result.revision };
  }

  async deleteTable(table: string): Promise<void> {
    const shards = await this.store.list(keys.shardsOf(table));
    const ops: CommitOp[] = [
      { kind: "delete", key: keys.policy(table) },
      { kind: "delete", key: keys.schema(table) },
      ...shards.map((entry): CommitOp => ({ kind: "delete", key: entry.key, expectedVersion: entry.version })),
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

function bytes(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? Buffer.from(value) : value;
}

function text(value: Uint8Array | string): string {
  return typeof value === "string" ? value : Buffer.from(value).toString("utf8");
}
