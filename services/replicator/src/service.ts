import type { MyceliumConfig } from "@mycelium/config";
import { decodeChangeEntry } from "@mycelium/db";
import { nodeagent, replicator, toValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { BoundedLoop, ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { openControlStore } from "@mycelium/topology";
import { ClusterDirectory } from "./adapters/cluster-directory";
import { ConflictJournal, type ConflictRecord } from "./adapters/conflict-journal";
import { rowChangesToStatements } from "./core/row-sql";
import { ReplicationController } from "./replication-controller";
import { createReplicationMetrics } from "./replication-metrics";
import { replicatorAuthorization } from "./rpc/authorization";
import { replicatorHandlers } from "./rpc/replicator-handlers";

export interface RunningReplicator {
  runtime: ServiceRuntime;
  replicatorId: string;
  controller: ReplicationController;
  address: string;
  stop(): Promise<void>;
}

export type ReplicatorStartOptions = Pick<RuntimeOptions, "spanExporters" | "otlp" | "processMetrics" | "opsPort" | "instanceId">;

/**
 * Start a replicator: it holds a membership lease, takes ownership of shards by lease, and for each
 * owned shard keeps the primary's write lease, ships its change log, and fails over when it is gone.
 */
export async function startReplicator(config: MyceliumConfig, options: ReplicatorStartOptions = {}): Promise<RunningReplicator> {
  const runtime = new ServiceRuntime({ role: "replicator", config, authorization: replicatorAuthorization, ...options });
  const replicatorId = options.instanceId ?? config.cluster.serviceName ?? "replicator";
  try {
    const store = await openControlStore(config.cluster.controlStoreUrl);
    runtime.onStop("control store", () => store.close());
    const directory = new ClusterDirectory(store);
    const journal = new ConflictJournal(store);
    const metrics = createReplicationMetrics(runtime.telemetry.metrics);
    const { replication } = config;
    const controller = new ReplicationController({
      replicatorId,
      store,
      directory,
      journal,
      clients: runtime.clients,
      logger: runtime.logger.child({ component: "replication" }),
      metrics,
      heartbeatIntervalMs: replication.heartbeatIntervalMs,
      heartbeatTimeoutMs: replication.heartbeatTimeoutMs,
      retry: { initialDelayMs: replication.retryInitialMs, maxDelayMs: replication.retryMaxMs, multiplier: replication.retryMultiplier, maxAttempts: 1000 },
    });

    /** An operator applies a journaled transaction after all: its rows are written on the current primary. */
    const applyConflict = async (record: ConflictRecord) => {
      await directory.refresh(true);
      const shard = directory.shard(record.shardId);
      const address = shard ? directory.nodeAddress(shard.primaryNodeId) : undefined;
      if (!shard || !address) throw new MyceliumError("UNAVAILABLE", `shard ${record.shardId} has no reachable primary`);
      const entry = decodeChangeEntry(record.entry);
      await runtime.clients.service(nodeagent.NodeAgentServiceService, address).execute(
        nodeagent.ExecuteRequest.create({
          shard: { shardId: shard.shardId, epoch: shard.epoch },
          statements: rowChangesToStatements(entry.changes).map((s) => ({ sql: s.sql, params: s.params.map(toValue) })),
          mode: nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT,
        }),
        { deadlineMs: 30_000 },
      );
    };

    runtime.server.addService(replicator.ReplicatorServiceService, replicatorHandlers(replicatorId, controller, journal, applyConflict));
    await runtime.listen();
    const membershipKey = `replicators/${replicatorId}`;
    const holder = `${replicatorId}@${runtime.advertiseAddress}`;
    const ttlMs = replication.heartbeatTimeoutMs;
    const lease = await store.acquireLease(membershipKey, holder, ttlMs);
    if (!lease.acquired) {
      throw new Error(`another replicator named ${replicatorId} is running (${lease.holder}); give each replica its own MYCELIUM_NAME`);
    }
    const membership = new BoundedLoop({ name: "membership lease", intervalMs: replication.heartbeatIntervalMs, logger: runtime.logger }, async () => {
      const renewed = await store.acquireLease(membershipKey, holder, ttlMs);
      if (!renewed.acquired) runtime.logger.error({ holder: renewed.holder }, "lost the replicator membership lease");
    }).start();
    runtime.onStop("membership", async () => {
      await membership.stop();
      await store.releaseLease(membershipKey, holder);
    });
    controller.start();
    runtime.onStop("replication", () => controller.stop());
    runtime.setReady();
    return { runtime, replicatorId, controller, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
