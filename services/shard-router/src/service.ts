import type { MyceliumConfig } from "@mycelium/config";
import { router } from "@mycelium/proto";
import { ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { createAnalysisCache, loadSqlParser } from "@mycelium/sql";
import { openControlStore } from "@mycelium/topology";
import { ControlStoreRouterStore } from "./adapters/control-store-router-store";
import { ReplicaSchemaRecorder } from "./replica-schemas";
import { shardRouterAuthorization } from "./rpc/authorization";
import { shardRouterHandlers } from "./rpc/shard-router-handlers";
import { ShardRouter } from "./shard-router";

export interface RunningShardRouter {
  runtime: ServiceRuntime;
  core: ShardRouter;
  /** host:port clients use. */
  address: string;
  stop(): Promise<void>;
}

export type ShardRouterStartOptions = Pick<RuntimeOptions, "spanExporters" | "otlp" | "processMetrics" | "opsPort" | "instanceId">;

/** Start a shard-router: control store, routing core, gRPC server. Returns once it serves. */
export async function startShardRouter(config: MyceliumConfig, options: ShardRouterStartOptions = {}): Promise<RunningShardRouter> {
  const runtime = new ServiceRuntime({ role: "shard-router", config, authorization: shardRouterAuthorization, ...options });
  try {
    await loadSqlParser();
    const controlStore = await openControlStore(config.cluster.controlStoreUrl);
    const store = new ControlStoreRouterStore(controlStore);
    runtime.onStop("control store", () => store.close());
    const core = new ShardRouter({
      store,
      telemetry: runtime.telemetry,
      networkId: config.network.networkId,
      policyDefaults: {
        replicationFactor: config.sharding.defaultReplicationFactor,
        minValidatorCopies: config.sharding.minValidatorCopies,
        shardCount: 8,
      },
      heartbeatIntervalMs: config.replication.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.replication.heartbeatTimeoutMs,
      analysisCache: createAnalysisCache({ maxEntries: config.database.statementCacheSize || 1000 }),
    });
    const replicaSchemas = new ReplicaSchemaRecorder(core, store, runtime.logger);
    runtime.server.addService(router.ShardRouterServiceService, shardRouterHandlers(core, config.replication.heartbeatIntervalMs, replicaSchemas));
    await runtime.listen();
    await core.snapshot();
    runtime.setReady();
    return { runtime, core, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
