import type { MyceliumConfig } from "@mycelium/config";
import { coordinator } from "@mycelium/proto";
import { BoundedLoop, FaultPoints, ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { openControlStore } from "@mycelium/topology";
import { ClusterClient } from "./adapters/cluster-client";
import { Recovery } from "./recovery";
import { coordinatorAuthorization } from "./rpc/authorization";
import { adminHandlers, decisionHandlers, transactionHandlers } from "./rpc/handlers";
import { TransactionManager } from "./transaction-manager";

export interface RunningCoordinator {
  runtime: ServiceRuntime;
  transactions: TransactionManager;
  recovery: Recovery;
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
    const cluster = new ClusterClient(runtime.clients, config.cluster.routerAddress);
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
      },
      faults: new FaultPoints(config.cluster.faultPoints, runtime.logger),
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
    return { runtime, transactions, recovery, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
