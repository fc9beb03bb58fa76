import type { MyceliumConfig } from "@mycelium/config";
import { replicator } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { BoundedLoop, ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { openControlStore } from "@mycelium/topology";
import { replicatorAuthorization } from "./rpc/authorization";

export interface RunningReplicator {
  runtime: ServiceRuntime;
  replicatorId: string;
  address: string;
  stop(): Promise<void>;
}

export type ReplicatorStartOptions = Pick<RuntimeOptions, "spanExporters" | "otlp" | "processMetrics" | "opsPort" | "instanceId">;

/**
 * Start a replicator. It announces itself by holding a membership lease in the control store (renewed
 * every heartbeat interval), which is also how replicator replicas will split shards among themselves.
 */
export async function startReplicator(config: MyceliumConfig, options: ReplicatorStartOptions = {}): Promise<RunningReplicator> {
  const runtime = new ServiceRuntime({ role: "replicator", config, authorization: replicatorAuthorization, ...options });
  const replicatorId = options.instanceId ?? config.cluster.serviceName ?? "replicator";
  try {
    const store = await openControlStore(config.cluster.controlStoreUrl);
    runtime.onStop("control store", () => store.close());
    runtime.server.addService(replicator.ReplicatorServiceService, {
      async getStatus() {
        return replicator.GetStatusResponse.create({ replicatorId, ownedShardIds: [] });
      },
      async listReplication() {
        return replicator.ListReplicationResponse.create({});
      },
      async listConflicts() {
        return replicator.ListConflictsResponse.create({});
      },
      async getConflict(request) {
        throw new MyceliumError("NOT_FOUND", `no conflict ${request.conflictId}`);
      },
      async resolveConflict(request) {
        throw new MyceliumError("NOT_FOUND", `no conflict ${request.conflictId}`);
      },
    });
    await runtime.listen();
    const membershipKey = `replicators/${replicatorId}`;
    const ttlMs = config.replication.heartbeatTimeoutMs;
    const lease = await store.acquireLease(membershipKey, `${replicatorId}@${runtime.advertiseAddress}`, ttlMs);
    if (!lease.acquired) {
      throw new Error(`another replicator named ${replicatorId} is running (${lease.holder}); give each replica its own MYCELIUM_NAME`);
    }
    const membership = new BoundedLoop({ name: "membership lease", intervalMs: config.replication.heartbeatIntervalMs, logger: runtime.logger }, async () => {
      const renewed = await store.acquireLease(membershipKey, `${replicatorId}@${runtime.advertiseAddress}`, ttlMs);
      if (!renewed.acquired) runtime.logger.error({ holder: renewed.holder }, "lost the replicator membership lease");
    }).start();
    runtime.onStop("membership", async () => {
      await membership.stop();
      await store.releaseLease(membershipKey, `${replicatorId}@${runtime.advertiseAddress}`);
    });
    runtime.setReady();
    return { runtime, replicatorId, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
