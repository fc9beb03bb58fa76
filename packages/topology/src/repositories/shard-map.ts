import { common } from "@mycelium/proto";
import type { ControlStore } from "../control-store";
import { TopologyError } from "../topology-error";
import { protoCodec, Repository, type WriteResult } from "./repository";

export type ShardInfo = common.ShardInfo;

export type EpochChangeResult =
  | { ok: true; shard: ShardInfo }
  /** The shard's epoch is no longer the one the caller acted on (someone else changed it), or it is gone. */
  | { ok: false; current: ShardInfo | null };

/**
 * The shard map: `shards/<shardId>` → common.ShardInfo, whose `version` field is the control-store version.
 * Epoch changes (promotion, moves) are compare-and-set on the epoch the caller saw, so of two arbiters acting
 * on the same epoch exactly one wins.
 */
export class ShardMap {
  private readonly records: Repository<ShardInfo>;

  constructor(private readonly store: ControlStore) {
    this.records = new Repository(store, "shards/", protoCodec(common.ShardInfo));
  }

  async get(shardId: string): Promise<ShardInfo | null> {
    const found = await this.records.get(shardId);
    return found ? { ...found.value, version: found.version } : null;
  }

  /** Every shard, or those of one table, in shard-id order. */
  async list(table?: string): Promise<ShardInfo[]> {
    const all = (await this.records.list()).map((found) => ({ ...found.value, version: found.version }));
    return table === undefined ? all : all.filter((shard) => shard.table === table);
  }

  /** Creates shards atomically: all of them, or none if any already exists. */
  async create(shards: readonly ShardInfo[]): Promise<WriteResult & { conflictShardId?: string }> {
    if (shards.length === 0) throw new TopologyError("INVALID_ARGUMENT", "create needs at least one shard");
    const result = await this.store.commit(
      shards.map((shard) => ({
        kind: "put" as const,
        key: this.records.key(shard.shardId),
        value: this.records.encode({ ...shard, version: 0 }),
        expectedVersion: 0,
      })),
    );
    if (result.ok) return { ok: true, version: result.revision };
    return { ok: false, actualVersion: result.actualVersion, conflictShardId: decodeURIComponent(result.conflictKey.slice("shards/".length)) };
  }

  /** Replaces a shard record if it is still at `expectedVersion`. */
  put(shard: ShardInfo, expectedVersion?: number): Promise<WriteResult> {
    return this.records.put(shard.shardId, { ...shard, version: 0 }, expectedVersion);
  }

  /**
   * Changes what the epoch fences — primary, replicas, state — if the shard is still at `expectedEpoch`, and
   * increments the epoch. Retries only when the record changed without an epoch change (a size update).
   */
  async changeEpoch(
    shardId: string,
    expectedEpoch: number,
    change: (shard: ShardInfo) => Partial<Pick<ShardInfo, "primaryNodeId" | "replicaNodeIds" | "state" | "keyRange">>,
    maxAttempts = 16,
  ): Promise<EpochChangeResult> {
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      const found = await this.records.get(shardId);
      if (!found || found.value.epoch !== expectedEpoch) {
        return { ok: false, current: found ? { ...found.value, version: found.version } : null };
      }
      const next: ShardInfo = { ...found.value, ...change(found.value), epoch: expectedEpoch + 1, version: 0 };
      const written = await this.records.put(shardId, next, found.version);
      if (written.ok) return { ok: true, shard: { ...next, version: written.version } };
    }
    throw new TopologyError("CONFLICT", `shard ${shardId}: lost ${maxAttempts} compare-and-set attempts in a row`);
  }

  /** Updates the reported size (no epoch change). */
  async setSize(shardId: string, sizeBytes: number): Promise<ShardInfo | null> {
    const updated = await this.records.update(shardId, (current) => (current ? { ...current.value, sizeBytes } : undefined));
    return updated ? { ...updated.value, version: updated.version } : null;
  }

  remove(shardId: string, expectedVersion?: number): Promise<WriteResult> {
    return this.records.delete(shardId, expectedVersion);
  }
}
