import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalCluster, type LocalClusterOptions, type ProcessHandle } from "@mycelium/cli";
import { MyceliumClient } from "@mycelium/client";

/** Settings that make a test cluster react in seconds rather than the production defaults' minutes. */
export const fastTimings: Record<string, string> = {
  MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: "500ms",
  MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: "3s",
  MYCELIUM_PREPARE_TIMEOUT: "3s",
  MYCELIUM_COMMIT_TIMEOUT: "2s",
  MYCELIUM_TRANSACTION_TIMEOUT: "10s",
  MYCELIUM_REPLICATION_RETRY_INITIAL: "100ms",
  MYCELIUM_REPLICATION_RETRY_MAX: "2s",
  MYCELIUM_MIN_VALIDATOR_COPIES: "1",
  MYCELIUM_LOG_LEVEL: "info",
};

export interface TestClusterOptions extends Partial<Omit<LocalClusterOptions, "dataDir">> {
  /** Where the cluster lives (created if missing); a new temporary directory by default. */
  dataDir?: string;
  /** Keep the data directory (logs included) after stop; also MYCELIUM_TEST_KEEP=1. */
  keep?: boolean;
}

/** A real multi-process cluster in a temporary directory, for end-to-end tests. */
export class TestCluster {
  private readonly clients: MyceliumClient[] = [];

  private constructor(readonly cluster: LocalCluster, private readonly keep: boolean) {}

  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-test-"));
    fs.mkdirSync(dataDir, { recursive: true });
    // A PostgreSQL started as the postgres user (when the tests run as root) must be able to enter it.
    fs.chmodSync(dataDir, 0o755);
    const cluster = new LocalCluster({
      basePort: 0,
      ...options,
      env: { ...fastTimings, ...options.env },
      dataDir,
    });
    const testCluster = new TestCluster(cluster, options.keep ?? process.env.MYCELIUM_TEST_KEEP === "1");
    try {
      await cluster.start();
    } catch (error) {
      await cluster.stop(2000);
      throw error;
    }
    return testCluster;
  }

  get dataDir(): string {
    return this.cluster.layout.dataDir;
  }

  get info() {
    return this.cluster.info;
  }

  address(service: "coordinator" | "shard-router" | "replicator"): string {
    return `${this.info.host}:${this.info.services[service].port}`;
  }

  nodeAddress(name: string): string {
    const node = this.info.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return `${this.info.host}:${node.port}`;
  }

  /** An SDK client with the `client` (SQL only) or `admin` identity; closed by stop(). */
  client(role: "client" | "admin" = "admin", options: { deadlineMs?: number } = {}): MyceliumClient {
    const client = new MyceliumClient({
      coordinatorAddress: this.address("coordinator"),
      routerAddress: this.address("shard-router"),
      tls: this.cluster.layout.certificate(role, role),
      networkId: this.info.networkId,
      ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
    });
    this.clients.push(client);
    return client;
  }

  process(name: string): ProcessHandle {
    return this.cluster.process(name);
  }

  /** Send a signal to a process and, for SIGKILL/SIGTERM, wait until it has exited. */
  async kill(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const { child } = this.process(name);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    if (signal === "SIGKILL" || signal === "SIGTERM") await exited;
  }

  /** Start a stopped process again, optionally with changed variables ("" removes one). */
  restart(name: string, envChanges: Record<string, string> = {}): Promise<ProcessHandle> {
    return this.cluster.restart(name, envChanges);
  }

  /** Stop every process and client, and delete the directory (unless keep). */
  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    await this.cluster.stop(5000);
    if (!this.keep) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
