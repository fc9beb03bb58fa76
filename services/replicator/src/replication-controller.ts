import type { BackoffPolicy, ClientPool } from "@mycelium/rpc";
import { BoundedLoop } from "@mycelium/runtime";
import type { Logger } from "@mycelium/telemetry";
import type { ControlStore } from "@mycelium/topology";
import type { ClusterDirectory } from "./adapters/cluster-directory";
import type { ConflictJournal } from "./adapters/conflict-journal";
import type { ReplicationMetrics } from "./replication-metrics";
import { ShardReplicator } from "./shard-replicator";

export interface ReplicationControllerOptions {
  replicatorId: string;
  store: ControlStore;
  directory: ClusterDirectory;
  journal: ConflictJournal;
  clients: ClientPool;
  logger: Logger;
  metrics: ReplicationMetrics;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  retry: BackoffPolicy;
}

/**
 * Which shards this replicator drives: every shard whose ownership lease it holds. Replicator replicas
 * split the shards among themselves this way; when one dies its leases lapse and the others take its
 * shards over within a heartbeat timeout.
 */
export class ReplicationController {
  private readonly running = new Map<string, ShardReplicator>();
  private loop: BoundedLoop | null = null;

  constructor(private readonly options: ReplicationControllerOptions) {}

  start(): this {
    // Fast enough that a new table's primaries get their first lease quickly.
    const intervalMs = Math.max(100, Math.min(500, this.options.heartbeatIntervalMs / 2));
    this.loop = new BoundedLoop({ name: "replication ownership", intervalMs, runImmediately: true, logger: this.options.logger }, () => this.tick()).start();
    return this;
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
    await Promise.all([...this.running.values()].map((r) => r.stop()));
    await Promise.all([...this.running.keys()].map((id) => this.options.store.releaseLease(leaseName(id), this.options.replicatorId).catch(() => undefined)));
    this.running.clear();
  }

  owned(): ShardReplicator[] {
    return [...this.running.values()];
  }

  private async tick(): Promise<void> {
    const { directory, store, replicatorId, heartbeatTimeoutMs } = this.options;
    await directory.refresh();
    const shards = directory.allShards();
    const present = new Set(shards.map((s) => s.shardId));
    for (const [id, replicator] of this.running) {
      if (!present.has(id)) {
        this.running.delete(id);
        await replicator.stop();
      }
    }
    for (const shard of shards) {
      const lease = await store.acquireLease(leaseName(shard.shardId), replicatorId, heartbeatTimeoutMs).catch(() => null);
      const mine = lease?.acquired ?? false;
      const current = this.running.get(shard.shardId);
      if (mine && !current) {
        this.running.set(
          shard.shardId,
          new ShardReplicator({
            shardId: shard.shardId,
            replicatorId,
            clients: this.options.clients,
            directory,
            journal: this.options.journal,
            logger: this.options.logger,
            metrics: this.options.metrics,
            heartbeatIntervalMs: this.options.heartbeatIntervalMs,
            heartbeatTimeoutMs,
            retry: this.options.retry,
          }).start(),
        );
      } else if (!mine && current) {
        this.running.delete(shard.shardId);
        await current.stop();
      }
    }
    this.options.metrics.owned.set(this.running.size);
  }
}

function leaseName(shardId: string): string {
  return `replicator/shard/${shardId}`;
}
