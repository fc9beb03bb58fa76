import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { generateNodeKeyPair, initCertificateDirectory, issueToDirectory, nodeIdFromPublicKey, type Role } from "@mycelium/tls";
import { choosePorts } from "./free-port";
import { LocalPostgres } from "./local-postgres";
import { ClusterLayout, type ClusterInfo, type NodeEntry, type NodeKind } from "./cluster-info";

export interface LocalClusterOptions {
  dataDir: string;
  /** @default 2 */
  validators?: number;
  /** @default 1 */
  miners?: number;
  /** @default "testnet" */
  networkId?: string;
  /** @default "127.0.0.1" */
  host?: string;
  /** First preferred port; services take the following ones. 0 = any free ports. @default 7400 */
  basePort?: number;
  /** Extra MYCELIUM_* settings for every process (e.g. shorter timeouts in tests). */
  env?: Record<string, string>;
  /** Extra settings per service role ("node-agent" applies to every node). */
  roleEnv?: Partial<Record<"coordinator" | "shard-router" | "replicator" | "node-agent", Record<string, string>>>;
  /** Write every span as JSON lines to <data-dir>/traces.jsonl. @default false */
  traces?: boolean;
  /** Node backends given explicitly (a PostgreSQL URL per node name); overrides `backend`. */
  nodeDatabases?: Record<string, { backend: "postgres"; url: string }>;
  /**
   * Where nodes keep their shards: "sqlite" (default), "postgres" (each node its own database), or
   * "mixed" (validators on PostgreSQL, miners on SQLite). New clusters only.
   */
  backend?: "sqlite" | "postgres" | "mixed";
  /** The control store: a SQLite file (default) or a database on the cluster's PostgreSQL. New clusters only. */
  controlStore?: "sqlite" | "postgres";
  /**
   * The PostgreSQL server for node databases and the control store: `{ binDir }` starts one in the data
   * directory (binaries on PATH when binDir is omitted); `{ url }` uses an existing server (databases are
   * created on it).
   */
  postgres?: { binDir?: string } | { url: string };
  /** Coordinator and router replicas (they share the control store). @default 1 each */
  coordinators?: number;
  routers?: number;
  /** @default "info" */
  logLevel?: string;
  /** Called with progress lines for the operator. */
  onProgress?: (line: string) => void;
  /** @default 60000 */
  readyTimeoutMs?: number;
  /**
   * How each service process is started: node with these arguments, in this directory (e.g. the container image's
   * entry point in a deployed copy, `[<app>/bin/container-entrypoint.js, role]`).
   * @default `node <service package>/dist/main.js` in the current directory
   */
  serviceCommand?: { args: (role: ServiceSpec["role"]) => string[]; cwd?: string };
}

export interface ServiceSpec {
  role: "shard-router" | "coordinator" | "replicator" | "node-agent";
  name: string;
  port: number;
  opsPort: number;
  /** Every MYCELIUM_* variable the service runs with. */
  env: Record<string, string>;
}

export interface ProcessHandle {
  role: ServiceSpec["role"];
  name: string;
  child: ChildProcess;
  port: number;
  opsPort: number;
  logPath: string;
  spec: ServiceSpec;
}

const serviceMains: Record<ProcessHandle["role"], string> = {
  "shard-router": "@mycelium/shard-router",
  coordinator: "@mycelium/coordinator",
  replicator: "@mycelium/replicator",
  "node-agent": "@mycelium/node-agent",
};

export function mainPath(role: ProcessHandle["role"]): string {
  const packageJson = require.resolve(`${serviceMains[role]}/package.json`);
  const main = path.join(path.dirname(packageJson), "dist", "main.js");
  if (!fs.existsSync(main)) throw new Error(`${main} is missing; build first (pnpm build)`);
  return main;
}

/**
 * A whole Mycelium cluster on this machine, one process per service on loopback, with its CA,
 * certificates, node keys, control store and data in one directory. Starting again in the same
 * directory keeps the data, the keys and (when free) the ports.
 */
export class LocalCluster {
  readonly layout: ClusterLayout;
  info!: ClusterInfo;
  readonly processes: ProcessHandle[] = [];
  private stopping = false;
  private readonly exitListeners: Array<(handle: ProcessHandle, code: number | null, signal: NodeJS.Signals | null) => void> = [];

  constructor(readonly options: LocalClusterOptions) {
    this.layout = new ClusterLayout(options.dataDir);
  }

  progress(line: string): void {
    this.options.onProgress?.(line);
  }

  /** Prepare the directory (CA, certificates, keys, ports), then start every process and wait until all serve. */
  async start(): Promise<void> {
    const startedAt = Date.now();
    await this.prepare();
    await this.startPostgres();
    // Everything starts at once: node-agents retry registration until the router answers.
    await Promise.all(this.serviceSpecs().map((spec) => this.spawn(spec)));
    this.progress(`ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  }

  /** What to run for every service of the cluster, with its complete environment. */
  serviceSpecs(): ServiceSpec[] {
    const { info } = this;
    const host = info.host;
    const routerAddress = `${host}:${info.services["shard-router"].port}`;
    const coordinatorAddress = `${host}:${info.services.coordinator.port}`;
    const specs: ServiceSpec[] = [
      this.spec("shard-router", "shard-router", info.services["shard-router"], {}),
      this.spec("coordinator", "coordinator", info.services.coordinator, { MYCELIUM_ROUTER_ADDRESS: routerAddress }),
      this.spec("replicator", "replicator", info.services.replicator, { MYCELIUM_ROUTER_ADDRESS: routerAddress }),
      ...(info.replicas ?? []).map((replica) => {
        // Coordinator replica n talks to router replica n when there is one: any router serves any request.
        const router = (info.replicas ?? []).find((r) => r.role === "shard-router" && r.name.endsWith(replica.name.slice("coordinator".length)));
        const address = router && replica.role === "coordinator" ? `${host}:${router.port}` : routerAddress;
        return this.spec(replica.role, replica.name, replica, replica.role === "coordinator" ? { MYCELIUM_ROUTER_ADDRESS: address } : {});
      }),
    ];
    for (const node of info.nodes) {
      const keys = JSON.parse(fs.readFileSync(this.layout.nodeKeyPath(node.name), "utf8")) as { publicKeyHex: string; privateKeyHex: string };
      const nodeDir = this.layout.nodeDir(node.name);
      const env: Record<string, string> = {
        MYCELIUM_ROUTER_ADDRESS: routerAddress,
        MYCELIUM_COORDINATOR_ADDRESS: coordinatorAddress,
        MYCELIUM_NODE_TYPE: node.kind,
        MYCELIUM_PUBLIC_KEY: keys.publicKeyHex,
        MYCELIUM_PRIVATE_KEY: keys.privateKeyHex,
        MYCELIUM_DATABASE_PATH: path.join(nodeDir, "node.db"),
        MYCELIUM_DATA_DIR: nodeDir,
      };
      if (node.kind === "miner") env.MYCELIUM_MINER_CAPACITY = String(node.minerCapacityGb ?? 100);
      if (node.backend === "postgres") {
        env.MYCELIUM_DATABASE_TYPE = "postgres";
        env.MYCELIUM_DATABASE_URL = node.databaseUrl!;
        // Each open distributed transaction holds a connection; the seed's 10 is small for a node.
        env.MYCELIUM_DATABASE_MAX_CONNECTIONS = "32";
      }
      specs.push(this.spec("node-agent", node.name, node, env, node.nodeId));
    }
    return specs;
  }

  private spec(role: ProcessHandle["role"], name: string, ports: { port: number; opsPort: number }, env: Record<string, string>, certificateName = name): ServiceSpec {
    const { info, layout, options } = this;
    const certificate = layout.certificate(role, certificateName);
    return {
      role,
      name,
      port: ports.port,
      opsPort: ports.opsPort,
      env: {
        MYCELIUM_HOST: info.host,
        MYCELIUM_PORT: String(ports.port),
        MYCELIUM_METRICS_PORT: String(ports.opsPort),
        MYCELIUM_ADVERTISE_ADDRESS: `${info.host}:${ports.port}`,
        MYCELIUM_NETWORK_ID: info.networkId,
        MYCELIUM_PROTOCOL_VERSION: info.protocolVersion,
        MYCELIUM_CONTROL_STORE_URL: info.controlStoreUrl,
        MYCELIUM_TLS_CERT_PATH: certificate.certPath,
        MYCELIUM_TLS_KEY_PATH: certificate.keyPath,
        MYCELIUM_TLS_CA_PATH: certificate.caPath,
        MYCELIUM_LOG_LEVEL: options.logLevel ?? "info",
        ...(role !== "node-agent" ? { MYCELIUM_NAME: name } : {}),
        ...(options.traces ? { MYCELIUM_TRACE_FILE: layout.traceFile } : {}),
        ...options.env,
        ...options.roleEnv?.[role],
        ...env,
      },
    };
  }

  /** CA, certificates, node keys and ports; reuses what the directory already has. */
  async prepare(): Promise<ClusterInfo> {
    const { options, layout } = this;
    const existing = layout.read();
    const networkId = existing?.networkId ?? options.networkId ?? "testnet";
    if (options.networkId && existing && existing.networkId !== options.networkId) {
      throw new Error(`${layout.dataDir} holds a cluster of network ${existing.networkId}, not ${options.networkId}; use another --data-dir`);
    }
    const host = options.host ?? existing?.host ?? "127.0.0.1";
    fs.mkdirSync(layout.logsDir, { recursive: true });
    if (!fs.existsSync(path.join(layout.certsDir, "ca.crt"))) {
      initCertificateDirectory(layout.certsDir, networkId);
      this.progress(`created cluster CA in ${layout.certsDir}`);
    }

    const validators = options.validators ?? existing?.nodes.filter((n) => n.kind === "validator").length ?? 2;
    const miners = options.miners ?? existing?.nodes.filter((n) => n.kind === "miner").length ?? 1;
    const wanted: Array<{ name: string; kind: NodeKind }> = [
      ...Array.from({ length: validators }, (_, i) => ({ name: `v${i + 1}`, kind: "validator" as const })),
      ...Array.from({ length: miners }, (_, i) => ({ name: `m${i + 1}`, kind: "miner" as const })),
    ];
    if (wanted.length === 0) throw new Error("a cluster needs at least one node");

    const base = options.basePort ?? 7400;
    const preferred = (offset: number, existingPort: number | undefined) => existingPort ?? (base === 0 ? 0 : base + offset);
    const previous = existing?.services;
    const [routerPort, coordinatorPort, replicatorPort, routerOps, coordinatorOps, replicatorOps, ...nodePorts] = await choosePorts(
      [
        preferred(0, previous?.["shard-router"].port),
        preferred(1, previous?.coordinator.port),
        preferred(2, previous?.replicator.port),
        preferred(100, previous?.["shard-router"].opsPort),
        preferred(101, previous?.coordinator.opsPort),
        preferred(102, previous?.replicator.opsPort),
        ...wanted.flatMap((node, i) => {
          const old = existing?.nodes.find((n) => n.name === node.name);
          return [preferred(10 + i, old?.port), preferred(110 + i, old?.opsPort)];
        }),
      ],
      host,
    );

    const replicaNames = [
      ...Array.from({ length: Math.max(0, (options.coordinators ?? 1) - 1) }, (_, i) => ({ role: "coordinator" as const, name: `coordinator-${i + 2}` })),
      ...Array.from({ length: Math.max(0, (options.routers ?? 1) - 1) }, (_, i) => ({ role: "shard-router" as const, name: `shard-router-${i + 2}` })),
    ];
    const [postgresPort, ...replicaPorts] = await choosePorts(
      [existing?.postgres?.port ?? (base === 0 ? 0 : base + 99), ...replicaNames.flatMap((r, i) => {
        const old = existing?.replicas?.find((x) => x.name === r.name);
        return [preferred(3 + i, old?.port), preferred(103 + i, old?.opsPort)];
      })],
      host,
    );
    const backend = existing ? undefined : (options.backend ?? "sqlite");
    const external = options.postgres && "url" in options.postgres ? options.postgres.url : existing?.postgres?.url;
    const databaseUrl = (database: string) => {
      if (external) {
        const url = new URL(external);
        url.pathname = `/${database}`;
        return url.toString();
      }
      return `postgres://postgres@127.0.0.1:${postgresPort}/${database}`;
    };

    const nodes: NodeEntry[] = wanted.map((node, i) => {
      fs.mkdirSync(layout.nodeDir(node.name), { recursive: true });
      const keyPath = layout.nodeKeyPath(node.name);
      if (!fs.existsSync(keyPath)) fs.writeFileSync(keyPath, JSON.stringify(generateNodeKeyPair(), null, 2) + "\n", { mode: 0o600 });
      const keys = JSON.parse(fs.readFileSync(keyPath, "utf8")) as { publicKeyHex: string };
      const nodeId = nodeIdFromPublicKey(keys.publicKeyHex);
      const previous = existing?.nodes.find((n) => n.name === node.name);
      const onPostgres = previous ? previous.backend === "postgres" : backend === "postgres" || (backend === "mixed" && node.kind === "validator");
      const database = options.nodeDatabases?.[node.name] ?? (previous?.databaseUrl
        ? { backend: "postgres" as const, url: previous.databaseUrl }
        : onPostgres ? { backend: "postgres" as const, url: databaseUrl(`mycelium_node_${node.name}`) } : undefined);
      return {
        name: node.name,
        kind: node.kind,
        nodeId,
        publicKey: keys.publicKeyHex,
        port: nodePorts[2 * i]!,
        opsPort: nodePorts[2 * i + 1]!,
        ...(node.kind === "miner" ? { minerCapacityGb: 100 } : {}),
        backend: database?.backend ?? "sqlite",
        ...(database ? { databaseUrl: database.url } : {}),
      };
    });

    const identities: Array<[Role, string]> = [
      ["shard-router", "shard-router"],
      ["coordinator", "coordinator"],
      ["replicator", "replicator"],
      ...replicaNames.map((r): [Role, string] => [r.role, r.name]),
      ["client", "client"],
      ["admin", "admin"],
      ...nodes.map((node): [Role, string] => ["node-agent", node.nodeId]),
    ];
    for (const [role, name] of identities) {
      if (!fs.existsSync(layout.certificate(role, name).certPath)) issueToDirectory(layout.certsDir, { networkId, role, name, hosts: ["localhost", "127.0.0.1", "::1", host] });
    }

    this.info = {
      version: 1,
      networkId,
      protocolVersion: existing?.protocolVersion ?? "1.0.0",
      host,
      controlStoreUrl:
        existing?.controlStoreUrl ??
        (options.controlStore === "postgres" ? databaseUrl("mycelium_control") : `sqlite:${path.resolve(layout.dataDir, "control.db")}`),
      ...(external || nodes.some((n) => n.backend === "postgres") || options.controlStore === "postgres" || existing?.postgres ? { postgres: { port: postgresPort!, ...(external ? { url: external } : {}), ...(options.postgres && "binDir" in options.postgres && options.postgres.binDir ? { binDir: options.postgres.binDir } : existing?.postgres?.binDir ? { binDir: existing.postgres.binDir } : {}) } } : {}),
      replicas: replicaNames.map((r, i) => ({ ...r, port: replicaPorts[2 * i]!, opsPort: replicaPorts[2 * i + 1]! })),
      services: {
        "shard-router": { port: routerPort!, opsPort: routerOps! },
        coordinator: { port: coordinatorPort!, opsPort: coordinatorOps! },
        replicator: { port: replicatorPort!, opsPort: replicatorOps! },
      },
      nodes,
      createdAtMs: existing?.createdAtMs ?? Date.now(),
    };
    layout.write(this.info);
    return this.info;
  }

  private postgres: LocalPostgres | null = null;

  /** Whether anything in the cluster lives on PostgreSQL. */
  get usesPostgres(): boolean {
    return this.info.nodes.some((n) => n.backend === "postgres") || this.info.controlStoreUrl.startsWith("postgres");
  }

  /** Start the cluster's own PostgreSQL (unless it uses an external one) and create the databases. */
  async startPostgres(): Promise<void> {
    const { info } = this;
    if (!this.usesPostgres) return;
    if (!info.postgres?.url) {
      this.postgres = new LocalPostgres({ dir: path.join(this.layout.dataDir, "postgres"), port: info.postgres!.port, ...(info.postgres?.binDir ? { binDir: info.postgres.binDir } : {}) });
      await this.postgres.start();
      this.progress(`postgres     ${"postgres".padEnd(22)} 127.0.0.1:${info.postgres!.port}  data ${this.postgres.dataDir}`);
    }
    const databases = [...info.nodes.filter((n) => n.databaseUrl).map((n) => n.databaseUrl!), ...(info.controlStoreUrl.startsWith("postgres") ? [info.controlStoreUrl] : [])];
    for (const url of databases) {
      const parsed = new URL(url);
      const name = decodeURIComponent(parsed.pathname.slice(1));
      parsed.pathname = "/postgres";
      const { Client } = await import("pg");
      const client = new Client({ connectionString: parsed.toString() });
      await client.connect();
      try {
        const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await client.end();
      }
    }
  }

  /** Start one process and wait until its /readyz answers. */
  async spawn(spec: ServiceSpec): Promise<ProcessHandle> {
    const logPath = path.join(this.layout.logsDir, `${spec.name}.log`);
    const log = fs.openSync(logPath, "a");
    const env = { PATH: process.env.PATH ?? "", ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}), ...spec.env };
    const command = this.options.serviceCommand;
    const args = command ? command.args(spec.role) : [mainPath(spec.role)];
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", log, log], ...(command?.cwd ? { cwd: command.cwd } : {}) });
    fs.closeSync(log);
    const handle: ProcessHandle = { role: spec.role, name: spec.name, child, port: spec.port, opsPort: spec.opsPort, logPath, spec };
    const previous = this.processes.findIndex((p) => p.name === spec.name);
    if (previous >= 0) this.processes.splice(previous, 1);
    this.processes.push(handle);
    child.on("exit", (code, signal) => {
      for (const listener of this.exitListeners) listener(handle, code, signal);
    });
    await this.waitReady(handle);
    this.progress(`${spec.role.padEnd(12)} ${spec.name.padEnd(22)} ${this.info.host}:${spec.port}  metrics http://${this.info.host}:${spec.opsPort}/metrics  log ${logPath}`);
    return handle;
  }

  /**
   * Start a stopped (or killed) process again with the same settings — changed by `envChanges`, where
   * an empty value removes a variable — and wait until it serves.
   */
  async restart(name: string, envChanges: Record<string, string> = {}): Promise<ProcessHandle> {
    const handle = this.process(name);
    if (handle.child.exitCode === null && handle.child.signalCode === null) throw new Error(`${name} is still running`);
    const env = { ...handle.spec.env, ...envChanges };
    for (const [key, value] of Object.entries(envChanges)) if (value === "") delete env[key];
    return this.spawn({ ...handle.spec, env });
  }

  /** Be told when a process exits (for `up`: report a crash). */
  onExit(listener: (handle: ProcessHandle, code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  private async waitReady(handle: ProcessHandle): Promise<void> {
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (handle.child.exitCode !== null || handle.child.signalCode !== null) {
        throw new Error(`${handle.name} exited (${handle.child.exitCode ?? handle.child.signalCode}) while starting:\n${tail(handle.logPath, 20)}`);
      }
      if (await readyz(this.info.host, handle.opsPort)) return;
      if (Date.now() > deadline) throw new Error(`${handle.name} did not become ready in time:\n${tail(handle.logPath, 20)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGTERM every process, nodes first and the router last; SIGKILL what is still running after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const order: ProcessHandle["role"][] = ["node-agent", "replicator", "coordinator", "shard-router"];
    for (const role of order) {
      await Promise.all(this.processes.filter((p) => p.role === role).map((p) => stopProcess(p.child, graceMs)));
    }
    await this.postgres?.stop().catch((error: unknown) => this.progress(`could not stop PostgreSQL: ${(error as Error).message}`));
  }

  /** The process for a name (v1, coordinator, ...). */
  process(name: string): ProcessHandle {
    const handle = [...this.processes].reverse().find((p) => p.name === name);
    if (!handle) throw new Error(`no process named ${name}`);
    return handle;
  }
}

export function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function readyz(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path: "/readyz", timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on("error", () => resolve(false));
    request.on("timeout", () => {
      request.destroy();
      resolve(false);
    });
  });
}

export function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).map((line) => `    ${line}`).join("\n");
  } catch {
    return "    (no log)";
  }
}
