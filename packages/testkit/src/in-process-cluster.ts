import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalCluster } from "@mycelium/cli";
import { MyceliumClient } from "@mycelium/client";
import { loadConfig } from "@mycelium/config";
import { startCoordinator } from "@mycelium/coordinator";
import { startNodeAgent } from "@mycelium/node-agent";
import { startReplicator } from "@mycelium/replicator";
import { startShardRouter } from "@mycelium/shard-router";
import type { SpanExporter } from "@mycelium/telemetry";
import { fastTimings } from "./test-cluster";

export interface InProcessClusterOptions {
  validators?: number;
  miners?: number;
  env?: Record<string, string>;
  /** Receives every span of every service (e.g. an InMemorySpanExporter). */
  spanExporters?: SpanExporter[];
}

interface Running {
  name: string;
  role: string;
  stop(): Promise<void>;
  runtime: { opsPort: number | null };
}

/**
 * The same cluster as `mycelium up`, with every service in this process (real gRPC over real mTLS on
 * loopback, real SQLite files): for tests that need to look inside, such as at every service's spans.
 */
export class InProcessCluster {
  readonly services: Running[] = [];
  private readonly clients: MyceliumClient[] = [];

  private constructor(readonly cluster: LocalCluster) {}

  static async start(options: InProcessClusterOptions = {}): Promise<InProcessCluster> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-inproc-"));
    const cluster = new LocalCluster({
      dataDir,
      basePort: 0,
      validators: options.validators ?? 2,
      miners: options.miners ?? 1,
      env: { ...fastTimings, MYCELIUM_LOG_LEVEL: "warn", ...options.env },
    });
    await cluster.prepare();
    const self = new InProcessCluster(cluster);
    const common = { spanExporters: options.spanExporters ?? [], processMetrics: false };
    try {
      await Promise.all(
        cluster.serviceSpecs().map(async (spec) => {
          const config = loadConfig(spec.env, { service: spec.role });
          const running =
            spec.role === "shard-router"
              ? await startShardRouter(config, common)
              : spec.role === "coordinator"
                ? await startCoordinator(config, common)
                : spec.role === "replicator"
                  ? await startReplicator(config, common)
                  : await startNodeAgent(config, common);
          self.services.push({ name: spec.name, role: spec.role, stop: () => running.stop(), runtime: running.runtime });
        }),
      );
    } catch (error) {
      await self.stop();
      throw error;
    }
    return self;
  }

  get info() {
    return this.cluster.info;
  }

  service(name: string): Running {
    const service = this.services.find((s) => s.name === name);
    if (!service) throw new Error(`no service ${name}`);
    return service;
  }

  client(role: "client" | "admin" = "admin"): MyceliumClient {
    const { info } = this;
    const client = new MyceliumClient({
      coordinatorAddress: `${info.host}:${info.services.coordinator.port}`,
      routerAddress: `${info.host}:${info.services["shard-router"].port}`,
      tls: this.cluster.layout.certificate(role, role),
      networkId: info.networkId,
    });
    this.clients.push(client);
    return client;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    const order = ["node-agent", "replicator", "coordinator", "shard-router"];
    for (const role of order) await Promise.all(this.services.filter((s) => s.role === role).map((s) => s.stop()));
    fs.rmSync(this.cluster.layout.dataDir, { recursive: true, force: true });
  }
}
