import type { MyceliumConfig } from "@mycelium/config";
import { coordinator } from "@mycelium/proto";
import { BoundedLoop, FaultPoints, ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { GrantStore, MigrationStore, openControlStore } from "@mycelium/topology";
import { AccessCheckedClusterClient, AccessControl } from "./access-control";
import { SchemaClient } from "./adapters/schema-client";
import { SchemaMigrations } from "./migrations";
import { Recovery } from "./recovery";
import { accessControlHandlers } from "./rpc/access-control-handlers";
import { coordinatorAuthorization } from "./rpc/authorization";
import { adminHandlers, decisionHandlers, transactionHandlers } from "./rpc/handlers";
import { migrationHandlers } from "./rpc/migration-handlers";
import { TransactionManager } from "./transaction-manager";

export interface RunningCoordinator {
  runtime: ServiceRuntime;
  transactions: TransactionManager;
  recovery: Recovery;
  access: AccessControl;
  migrations: SchemaMigrations;
  address: string;
  stop(): Promise<void>;
}

export type CoordinatorStartOptions = Pick<RuntimeOptions, "spanExporters" | "otlp" | "processMetrics" | "opsPort" | "instanceId">;

/** Start a coordinator: it finishes decided transactions left by any coordinator, then serves. */
export async function startCoordinator(config: MyceliumConfig, options: CoordinatorStartOptions = {}): Promise<RunningCoordinator> {
  if (!config.cluster.routerAddress) throw new Error("MYCELIUM_ROUTER_ADDRESS is required");
  const runtime = new ServiceRuntime({ role: "coordinator", config, authorization: coordinatorAuthorization, ...options });
  const coordinatorId = options.instanceId ?? config.cluster.serviceName ?? "coordinator";
  try {
    const store = await openControlStore(config.cluster.controlStoreUrl);
    runtime.onStop("control store", () => store.close());
    const access = new AccessControl(store, new GrantStore(store), runtime.logger);
    await access.start();
    runtime.onStop("grant cache", () => access.stop());
    // Every statement the coordinator routes is checked against the caller's privileges (access-control.ts).
    const cluster = new AccessCheckedClusterClient(runtime.clients, config.cluster.routerAddress, access);
    const migrations = new SchemaMigrations({
      coordinatorId,
      store,
      migrations: new MigrationStore(store),
      schema: new SchemaClient(runtime.clients, config.cluster.routerAddress),
      cluster,
      log: runtime.logger.child({ component: "migrations" }),
    });
    const { transactions: limits } = config;
    const transactions = new TransactionManager({
      coordinatorId,
      cluster,
      decisions: store.decisions,
      telemetry: runtime.telemetry,
      limits: {
        transactionTimeoutMs: limits.transactionTimeoutMs,
        prepareTimeoutMs: limits.prepareTimeoutMs,
        commitTimeoutMs: limits.commitTimeoutMs,
        maxTransactions: limits.maxTransactions,
        failoverWaitMs: config.replication.heartbeatTimeoutMs + 2 * config.replication.heartbeatIntervalMs,
      },
      faults: new FaultPoints(config.cluster.faultPoints, runtime.logger),
      ddl: (statement, plan) => migrations.executeDdl(statement, plan),
    });
    runtime.onStop("transactions", () => transactions.stop());
    const recovery = new Recovery({
      coordinatorId,
      decisions: store.decisions,
      cluster,
      transactions,
      telemetry: runtime.telemetry,
      commitTimeoutMs: limits.commitTimeoutMs,
      graceMs: limits.commitTimeoutMs,
    });
    runtime.server.addService(coordinator.TransactionServiceService, transactionHandlers(transactions));
    runtime.server.addService(coordinator.DecisionServiceService, decisionHandlers(recovery));
    runtime.server.addService(coordinator.TransactionAdminServiceService, adminHandlers(recovery));
    runtime.server.addService(coordinator.SchemaMigrationServiceService, migrationHandlers(migrations));
    runtime.server.addService(coordinator.AccessControlServiceService, accessControlHandlers(access));
    await runtime.listen();

    const recoveryLoop = new BoundedLoop(
      { name: "recovery", intervalMs: Math.max(500, Math.min(limits.commitTimeoutMs, 2000)), runImmediately: true, logger: runtime.logger },
      (signal) => recovery.finishUndone(signal).then(() => undefined),
    ).start();
    runtime.onStop("recovery loop", () => recoveryLoop.stop());
    const cleanup = new BoundedLoop({ name: "decision cleanup", intervalMs: limits.cleanupIntervalMs, logger: runtime.logger }, async () => {
      // Keep finished decisions a while: a late participant asking about one still gets the answer.
      const pruned = await store.decisions.pruneCompleted(Date.now() - Math.max(limits.cleanupIntervalMs, 10 * 60_000));
      if (pruned > 0) runtime.logger.debug({ pruned }, "pruned finished decisions");
    }).start();
    runtime.onStop("cleanup loop", () => cleanup.stop());

    runtime.setReady();
    return { runtime, transactions, recovery, access, migrations, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
