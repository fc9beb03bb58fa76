import { common } from "@mycelium/proto";
import { jsonCodec, NodeRegistry, PolicyStore, Repository, ShardMap, type ControlStore, type EpochChangeResult } from "@mycelium/topology";

export interface ForkRecord {
  shardId: string;
  /** The primary that was replaced; its entries beyond forkLsn may be unknown to the new primary. */
  oldPrimary: string;
  newPrimary: string;
  /** The new primary's log position when it was promoted: both logs agree up to here. */
  forkLsn: number;
  epoch: number;
  atMs: number;
}

/**
 * What the replicator reads and changes in the control store: the shard map (epoch changes are
 * compare-and-set, so two replicators can never both promote), nodes, policies, and the fork records
 * that let a returning primary be reconciled even after a replicator restart. Reads are cached and
 * refreshed by the controller's tick.
 */
export class ClusterDirectory {
  readonly shardMap: ShardMap;
  private readonly nodeRegistry: NodeRegistry;
  private readonly policies: PolicyStore;
  private readonly forks: Repository<ForkRecord>;
  private shards = new Map<string, common.ShardInfo>();
  private nodes = new Map<string, common.NodeInfo>();
  private policyByTable = new Map<string, common.TablePolicy>();
  private revision = -1;

  constructor(private readonly store: ControlStore) {
    this.shardMap = new ShardMap(store);
    this.nodeRegistry = new NodeRegistry(store);
    this.policies = new PolicyStore(store);
    this.forks = new Repository(store, "replication/forks/", jsonCodec<ForkRecord>());
  }

  /** Reload when the store changed; returns whether anything was reloaded. */
  async refresh(force = false): Promise<boolean> {
    const revision = await this.store.revision();
    if (!force && revision === this.revision) return false;
    const [shards, nodes, policies] = await Promise.all([this.shardMap.list(), this.nodeRegistry.list(), this.policies.list()]);
    this.shards = new Map(shards.map((s) => [s.shardId, s]));
    this.nodes = new Map(nodes.map((n) => [n.id, n.value]));
    this.policyByTable = new Map(policies.map((p) => [p.table, p]));
    this.revision = revision;
    return true;
  }

  allShards(): common.ShardInfo[] {
    return [...this.shards.values()].filter((s) => s.state !== common.ShardState.SHARD_STATE_RETIRED);
  }

  shard(shardId: string): common.ShardInfo | undefined {
    return this.shards.get(shardId);
  }

  nodeAddress(nodeId: string): string | undefined {
    return this.nodes.get(nodeId)?.address;
  }

  nodeKind(nodeId: string): "validator" | "miner" {
    return this.nodes.get(nodeId)?.nodeType === common.NodeType.NODE_TYPE_MINER ? "miner" : "validator";
  }

  /** Secondaries a commit must reach on this shard's table (0: asynchronous). */
  syncReplicas(table: string): number {
    const policy = this.policyByTable.get(table);
    return policy?.replicationSync === common.ReplicationSync.REPLICATION_SYNC_SYNC ? policy.syncReplicas : 0;
  }

  async changeEpoch(shardId: string, expectedEpoch: number, change: Parameters<ShardMap["changeEpoch"]>[2]): Promise<EpochChangeResult> {
    const result = await this.shardMap.changeEpoch(shardId, expectedEpoch, change);
    if (result.ok) this.shards.set(shardId, result.shard);
    else if (result.current) this.shards.set(shardId, result.current);
    return result;
  }

  async recordFork(fork: ForkRecord): Promise<void> {
    await this.forks.put(fork.shardId, fork);
  }

  async fork(shardId: string): Promise<ForkRecord | null> {
    return (await this.forks.get(shardId))?.value ?? null;
  }

  async clearFork(shardId: string): Promise<void> {
    await this.forks.delete(shardId);
  }
}
