export type ServiceName = "coordinator" | "shard-router" | "replicator" | "node-agent" | "cli";
export const serviceNames: readonly ServiceName[] = Object.freeze(["coordinator", "shard-router", "replicator", "node-agent", "cli"]);

export type NodeType = "validator" | "miner";
export type DatabaseType = "sqlite" | "postgres";
export type DatabaseSslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
export type ReplicationMode = "primary" | "secondary";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/**
 * The whole configuration of one Mycelium process, parsed once at start by `loadConfig` and passed down.
 * Durations are milliseconds and sizes are bytes whatever unit the variable was written in.
 * The object returned by `loadConfig` is deeply frozen: a change after validation would bypass validation.
 */
export interface MyceliumConfig {
  network: {
    host: string;
    port: number;
    p2pPort: number;
    networkId: string;
    protocolVersion: string;
    minProtocolVersion: string;
  };
  node: {
    nodeType?: NodeType;
    publicKey?: string;
    privateKey?: string;
    validatorWeight: number;
    minerCapacityGb?: number;
  };
  database: {
    type: DatabaseType;
    url?: string;
    path: string;
    maxConnections: number;
    idleTimeoutMs: number;
    connectTimeoutMs: number;
    sslMode: DatabaseSslMode;
    statementCacheSize: number;
  };
  transactions: {
    transactionTimeoutMs: number;
    prepareTimeoutMs: number;
    commitTimeoutMs: number;
    maxTransactions: number;
    cleanupIntervalMs: number;
  };
  replication: {
    mode: ReplicationMode;
    peers: string[];
    heartbeatIntervalMs: number;
    heartbeatTimeoutMs: number;
    retryInitialMs: number;
    retryMaxMs: number;
    retryMultiplier: number;
  };
  sharding: {
    defaultReplicationFactor: number;
    minValidatorCopies: number;
    maxShardSizeBytes: number;
    rebalanceIntervalMs: number;
    loadThreshold: number;
  };
  security: {
    tlsCertPath?: string;
    tlsKeyPath?: string;
    tlsCaPath?: string;
    tlsVerifyClient: boolean;
    tlsVerifyHostname: boolean;
  };
  performance: {
    maxPeers: number;
    connectionLimit: number;
    connectionTimeoutMs: number;
    pingIntervalMs: number;
    syncIntervalMs: number;
  };
  /** Mycelium's own variables (not in the seed). */
  cluster: {
    /** host:port others use to reach this service. Unset when PORT is 0: the service knows its port only after binding. */
    advertiseAddress?: string;
    routerAddress?: string;
    coordinatorAddress?: string;
    /** "sqlite:<path>" or "postgres://…" */
    controlStoreUrl: string;
    /** Plain-HTTP port for /metrics and /healthz; 0 disables the endpoint. */
    metricsPort: number;
    logLevel: LogLevel;
    /** Instance name, the <name> of the certificate identity spiffe://<network>/<role>/<name>. */
    serviceName?: string;
    dataDir?: string;
    traceFile?: string;
    /** Testing only: crash points (MYCELIUM_FAULT_POINTS). */
    faultPoints: string[];
  };
}

export type ConfigGroup = keyof MyceliumConfig;
