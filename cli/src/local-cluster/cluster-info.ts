import * as fs from "node:fs";
import * as path from "node:path";
import { certificatePaths, type Role, type TlsPaths } from "@mycelium/tls";

export type NodeKind = "validator" | "miner";

export interface NodeEntry {
  /** Short name used for files and logs (v1, v2, m1, ...). */
  name: string;
  kind: NodeKind;
  nodeId: string;
  publicKey: string;
  port: number;
  opsPort: number;
  minerCapacityGb?: number;
  backend: "sqlite" | "postgres";
  /** PostgreSQL URL of this node's database when backend is postgres. */
  databaseUrl?: string;
}

export interface ClusterInfo {
  version: 1;
  networkId: string;
  protocolVersion: string;
  host: string;
  controlStoreUrl: string;
  services: {
    "shard-router": { port: number; opsPort: number };
    coordinator: { port: number; opsPort: number };
    replicator: { port: number; opsPort: number };
  };
  nodes: NodeEntry[];
  /** Extra coordinator and router replicas sharing the control store. */
  replicas?: Array<{ role: "coordinator" | "shard-router"; name: string; port: number; opsPort: number }>;
  /** The PostgreSQL server of node databases / the control store: started here (port) or external (url). */
  postgres?: { port: number; url?: string; binDir?: string };
  createdAtMs: number;
}

/** The files of a local cluster inside its data directory. */
export class ClusterLayout {
  constructor(readonly dataDir: string) {}

  get infoPath(): string {
    return path.join(this.dataDir, "cluster.json");
  }
  get certsDir(): string {
    return path.join(this.dataDir, "certs");
  }
  get logsDir(): string {
    return path.join(this.dataDir, "logs");
  }
  get traceFile(): string {
    return path.join(this.dataDir, "traces.jsonl");
  }
  nodeDir(name: string): string {
    return path.join(this.dataDir, "nodes", name);
  }
  nodeKeyPath(name: string): string {
    return path.join(this.nodeDir(name), "node-key.json");
  }
  certificate(role: Role, name: string): TlsPaths {
    return certificatePaths(this.certsDir, role, name);
  }

  read(): ClusterInfo | null {
    if (!fs.existsSync(this.infoPath)) return null;
    return JSON.parse(fs.readFileSync(this.infoPath, "utf8")) as ClusterInfo;
  }

  write(info: ClusterInfo): void {
    fs.mkdirSync(this.dataDir, { recursive: true });
    const temporary = `${this.infoPath}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(info, null, 2) + "\n");
    fs.renameSync(temporary, this.infoPath);
  }
}

/** How a command reaches a cluster: from a local data directory, or from explicit flags. */
export interface Connection {
  networkId: string;
  coordinatorAddress: string;
  routerAddress: string;
  /** host:port of a replicator (replication status, conflicts); empty when unknown. */
  replicatorAddress: string;
  tls: TlsPaths;
  protocolVersion: string;
}

export interface ConnectionFlags {
  dataDir?: string;
  coordinator?: string;
  router?: string;
  replicator?: string;
  cert?: string;
  key?: string;
  ca?: string;
  networkId?: string;
}

export const defaultDataDir = ".mycelium";

/**
 * Resolve where and as whom to connect. Flags win; otherwise the data directory of a cluster started
 * with `mycelium up` gives addresses and the certificate of the wanted role.
 */
export function resolveConnection(flags: ConnectionFlags, role: "client" | "admin"): Connection {
  const layout = new ClusterLayout(flags.dataDir ?? defaultDataDir);
  const info = layout.read();
  if (!info && !(flags.coordinator && flags.cert && flags.key && flags.ca)) {
    throw new Error(
      `no cluster in ${layout.dataDir} (missing cluster.json): start one with \`mycelium up --data-dir ${layout.dataDir}\`, or pass --coordinator, --cert, --key and --ca`,
    );
  }
  const certificate = info ? layout.certificate(role, role) : undefined;
  const host = info?.host ?? "127.0.0.1";
  return {
    networkId: flags.networkId ?? info?.networkId ?? "testnet",
    protocolVersion: info?.protocolVersion ?? "1.0.0",
    coordinatorAddress: flags.coordinator ?? `${host}:${info!.services.coordinator.port}`,
    routerAddress: flags.router ?? (info ? `${host}:${info.services["shard-router"].port}` : ""),
    replicatorAddress: flags.replicator ?? (info ? `${host}:${info.services.replicator.port}` : ""),
    tls: {
      certPath: flags.cert ?? certificate!.certPath,
      keyPath: flags.key ?? certificate!.keyPath,
      caPath: flags.ca ?? certificate!.caPath,
    },
  };
}
