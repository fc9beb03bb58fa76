import * as path from "node:path";
import type { MyceliumConfig } from "@mycelium/config";
import { openShardStore, type ShardStore } from "@mycelium/db";
import { nodeagent } from "@mycelium/proto";
import { sleep, backoffDelayMs } from "@mycelium/rpc";
import { BoundedLoop, FaultPoints, ServiceRuntime, type RuntimeOptions } from "@mycelium/runtime";
import { nodeIdFromPublicKey } from "@mycelium/tls";
import { DecisionInquirer } from "./adapters/decision-inquirer";
import { RouterLink } from "./adapters/router-link";
import { NodeAgent } from "./node-agent";
import { nodeAgentAuthorization } from "./rpc/authorization";
import { nodeAgentHandlers } from "./rpc/node-agent-handlers";

export interface RunningNodeAgent {
  runtime: ServiceRuntime;
  core: NodeAgent;
  nodeId: string;
  address: string;
  stop(): Promise<void>;
}

export type NodeAgentStartOptions = Pick<RuntimeOptions, "spanExporters" | "otlp" | "processMetrics" | "opsPort">;

/**
 * Start a node-agent: open the node's databases (redoing prepared transactions before anything is
 * served), serve, register with the router, then heartbeat and resolve in-doubt transactions.
 */
export async function startNodeAgent(config: MyceliumConfig, options: NodeAgentStartOptions = {}): Promise<RunningNodeAgent> {
  const { node } = config;
  if (!node.nodeType || !node.publicKey || !node.privateKey) throw new Error("MYCELIUM_NODE_TYPE, MYCELIUM_PUBLIC_KEY and MYCELIUM_PRIVATE_KEY are required");
  if (!config.cluster.routerAddress || !config.cluster.coordinatorAddress) throw new Error("MYCELIUM_ROUTER_ADDRESS and MYCELIUM_COORDINATOR_ADDRESS are required");
  const nodeId = nodeIdFromPublicKey(node.publicKey);
  const runtime = new ServiceRuntime({ role: "node-agent", config, authorization: nodeAgentAuthorization, instanceId: nodeId, ...options });
  const log = runtime.logger;
  try {
    const store = await openStore(config, nodeId);
    runtime.onStop("shard store", () => store.close());
    await store.checkReady({ minPreparedTransactions: 1 });
    const recovered = await store.recoverPrepared();
    if (recovered.length > 0) log.warn({ count: recovered.length }, "recovered prepared transactions; they hold their shards until decided");

    const routerLink = new RouterLink(runtime.clients, config.cluster.routerAddress, {
      nodeId,
      nodeType: node.nodeType,
      publicKey: node.publicKey,
      privateKey: node.privateKey,
      validatorWeight: node.validatorWeight,
      minerCapacityGb: node.minerCapacityGb ?? 0,
      networkId: config.network.networkId,
      protocolVersion: config.network.protocolVersion,
    }, log);

    let refreshing: Promise<void> | null = null;
    const heartbeatOnce = async (): Promise<void> => {
      const response = await routerLink.heartbeat(
        core.assignments.all.length ? (await core.status()).storedBytes : 0,
        runtime.advertiseAddress,
        Math.max(1000, config.replication.heartbeatIntervalMs),
        await core.schemaVersions.report(core.assignments.all), // schema versioning hook: each shard's schema version
      );
      const { added } = core.assignments.update(response.assignedShards, response.shardMapVersion);
      // Every heartbeat: sets up new shards and retries any that could not be set up before.
      await core.onAssigned(added);
    };
    const refreshAssignments = (): Promise<void> => {
      refreshing ??= heartbeatOnce().finally(() => {
        refreshing = null;
      });
      return refreshing;
    };

    const core = new NodeAgent({
      nodeId,
      store,
      telemetry: runtime.telemetry,
      transactionTimeoutMs: config.transactions.transactionTimeoutMs,
      maxTransactions: config.transactions.maxTransactions,
      refreshAssignments,
      faults: new FaultPoints(config.cluster.faultPoints, log),
      leaseWaitMs: Math.min(3000, 2 * config.replication.heartbeatIntervalMs),
      replicationWaitMs: config.transactions.commitTimeoutMs,
      // Two connections stay free for reads and autocommits.
      ...(config.database.type === "postgres" ? { maxOpenLocalTransactions: Math.max(1, config.database.maxConnections - 2) } : {}),
    });
    runtime.onStop("open transactions", () => core.close());
    let isolated = false;
    if (config.cluster.faultPoints.includes("node.isolate-on-sigusr2")) {
      const toggle = () => {
        isolated = !isolated;
        log.warn({ isolated }, "fault injection: partition from the replicator toggled");
      };
      process.on("SIGUSR2", toggle);
      runtime.onStop("fault signal", () => void process.off("SIGUSR2", toggle));
    }
    runtime.server.addService(nodeagent.NodeAgentServiceService, nodeAgentHandlers(core, () => isolated));
    await runtime.listen();

    await registerUntilAccepted(routerLink, runtime, config);
    await refreshAssignments();

    const heartbeats = new BoundedLoop({ name: "heartbeat", intervalMs: config.replication.heartbeatIntervalMs, logger: log }, () => refreshAssignments()).start();
    runtime.onStop("heartbeat loop", () => heartbeats.stop());

    const inquirer = new DecisionInquirer(
      runtime.clients,
      config.cluster.coordinatorAddress,
      store,
      core,
      log,
      // Give the coordinator its whole prepare and one commit attempt before asking.
      config.transactions.prepareTimeoutMs + config.transactions.commitTimeoutMs,
    );
    const inquiries = new BoundedLoop(
      { name: "in-doubt resolution", intervalMs: Math.max(1000, Math.min(config.transactions.commitTimeoutMs, 5000)), runImmediately: recovered.length > 0, logger: log },
      (signal) => inquirer.resolveInDoubt(signal).then(() => undefined),
    ).start();
    runtime.onStop("in-doubt loop", () => inquiries.stop());

    runtime.setReady();
    return { runtime, core, nodeId, address: runtime.advertiseAddress, stop: () => runtime.stop() };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}

function openStore(config: MyceliumConfig, nodeId: string): Promise<ShardStore> {
  const { database } = config;
  if (database.type === "postgres") {
    return openShardStore({
      kind: "postgres",
      // Changes are stamped with it: version vectors and divergence are counted per node id.
      nodeId,
      url: database.url!,
      maxConnections: database.maxConnections,
      idleTimeoutMs: database.idleTimeoutMs,
      connectTimeoutMs: database.connectTimeoutMs,
      sslMode: database.sslMode === "allow" ? "prefer" : database.sslMode,
      statementCacheSize: database.statementCacheSize,
    });
  }
  const dataDir = config.cluster.dataDir ?? path.dirname(path.resolve(database.path));
  return openShardStore({
    kind: "sqlite",
    nodeId,
    dataDir,
    nodeDatabasePath: path.resolve(database.path),
    statementCacheSize: database.statementCacheSize,
  });
}

/** The router may start after us: keep trying (with backoff) until it accepts, or give up after a minute. */
async function registerUntilAccepted(link: RouterLink, runtime: ServiceRuntime, config: MyceliumConfig): Promise<void> {
  const policy = { initialDelayMs: config.replication.retryInitialMs, maxDelayMs: Math.min(config.replication.retryMaxMs, 5000), multiplier: config.replication.retryMultiplier, maxAttempts: 30 };
  for (let attempt = 1; ; attempt++) {
    try {
      await link.register(runtime.advertiseAddress);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= policy.maxAttempts || (code !== "UNAVAILABLE" && code !== "DEADLINE_EXCEEDED")) throw error;
      runtime.logger.warn({ attempt, err: (error as Error).message }, "router not reachable yet; retrying registration");
      await sleep(Math.max(200, backoffDelayMs(policy, attempt)));
    }
  }
}
