import { dirname } from "node:path";
import type { ConfigGroup, MyceliumConfig, ServiceName } from "./types";
import {
  boolean,
  controlStoreUrl,
  decimal,
  duration,
  filePath,
  hexKey,
  host,
  hostPort,
  integer,
  list,
  oneOf,
  port,
  postgresUrl,
  semver,
  size,
  text,
  type ValueKind,
} from "./value-kinds";
import { nodeIdFromPublicKeyHex } from "./node-key";

/** One environment variable: the single source for parsing, validation, `describeConfig` and the docs. */
export interface VariableSpec {
  /** The full name, e.g. "MYCELIUM_PORT". */
  readonly name: string;
  readonly group: ConfigGroup;
  /** The field of `MyceliumConfig[group]` it fills. */
  readonly field: string;
  /** Short type label: "port", "duration", "boolean", … */
  readonly type: string;
  /** What a valid value looks like, as error messages say it. */
  readonly expected: string;
  /** The default as an operator would write it (parsed like any other value). */
  readonly default?: string;
  /** When the default is computed from other values, how. */
  readonly derivedDefault?: string;
  readonly description: string;
  /** Never printed: shown as "<redacted>" by describeConfig and in error messages. */
  readonly secret: boolean;
  /** Services that refuse to start without it. */
  readonly requiredFor: readonly ServiceName[];
  /** Also required when another variable has this value. */
  readonly requiredWhen?: { readonly variable: string; readonly equals: string };
}

/** A VariableSpec with what loadConfig needs to parse it; the generics are erased once built. */
export interface VariableDefinition extends VariableSpec {
  readonly kind: ValueKind<unknown>;
  readonly derive?: (config: MyceliumConfig, service: ServiceName) => unknown;
}

const everyService: readonly ServiceName[] = ["coordinator", "shard-router", "replicator", "node-agent", "cli"];
const servers: readonly ServiceName[] = everyService.filter((service) => service !== "cli");

function variable<G extends ConfigGroup, F extends keyof MyceliumConfig[G] & string>(definition: {
  name: string;
  group: G;
  field: F;
  kind: ValueKind<NonNullable<MyceliumConfig[G][F]>>;
  default?: string;
  derived?: { description: string; derive(config: MyceliumConfig, service: ServiceName): MyceliumConfig[G][F] | undefined };
  description: string;
  secret?: boolean;
  requiredFor?: readonly ServiceName[];
  requiredWhen?: { variable: string; equals: string };
}): VariableDefinition {
  const { kind, derived, secret, requiredFor, ...rest } = definition;
  return Object.freeze({
    ...rest,
    type: kind.type,
    expected: kind.expected,
    secret: secret ?? false,
    requiredFor: Object.freeze([...(requiredFor ?? [])]),
    // The helper's signature ties each kind's output type to its config field; past this point the
    // table is handled generically.
    kind: kind as ValueKind<unknown>,
    ...(derived ? { derivedDefault: derived.description, derive: derived.derive } : {}),
  });
}

/** Points where a test can make a process crash (see MYCELIUM_FAULT_POINTS). */
export const faultPointNames = [
  "coordinator.after-first-prepare",
  "coordinator.after-all-prepares",
  "coordinator.after-decision",
  "coordinator.after-first-commit",
  "node.after-prepare",
  "node.after-vote",
  "node.before-commit",
  // Not a crash: SIGUSR2 cuts the node off from the replicator (and again restores it), to split a shard.
  "node.isolate-on-sigusr2",
  "node.before-apply-schema",
] as const;

export type FaultPointName = (typeof faultPointNames)[number];

/** Bracket IPv6 literals so "host:port" stays unambiguous. */
function joinHostPort(hostName: string, portNumber: number): string {
  return hostName.includes(":") ? `[${hostName}]:${portNumber}` : `${hostName}:${portNumber}`;
}

export const variableDefinitions: readonly VariableDefinition[] = Object.freeze([
  // Network
  variable({ name: "MYCELIUM_HOST", group: "network", field: "host", kind: host(), default: "0.0.0.0", description: "Address the gRPC server binds to." }),
  variable({ name: "MYCELIUM_PORT", group: "network", field: "port", kind: port(), default: "8080", description: "Main service (gRPC) port; 0 picks a free port." }),
  variable({ name: "MYCELIUM_P2P_PORT", group: "network", field: "p2pPort", kind: port(), default: "9090", description: "P2P communication port (the seed's; Mycelium's services talk over the main port)." }),
  variable({
    name: "MYCELIUM_NETWORK_ID",
    group: "network",
    field: "networkId",
    // It is the trust domain of every certificate identity spiffe://<network-id>/…, so it takes the
    // characters a SPIFFE trust domain allows.
    kind: text({ type: "network id", expected: "lowercase letters, digits, '.', '-' or '_' (a SPIFFE trust domain)", pattern: /^[a-z0-9._-]{1,255}$/ }),
    default: "testnet",
    description: "Network identifier; peers on another network are rejected.",
  }),
  variable({ name: "MYCELIUM_PROTOCOL_VERSION", group: "network", field: "protocolVersion", kind: semver(), default: "1.0.0", description: "Protocol version this process speaks." }),
  variable({ name: "MYCELIUM_MIN_PROTOCOL_VERSION", group: "network", field: "minProtocolVersion", kind: semver(), default: "1.0.0", description: "Oldest peer protocol version accepted; at most PROTOCOL_VERSION." }),

  // Node identity
  variable({ name: "MYCELIUM_NODE_TYPE", group: "node", field: "nodeType", kind: oneOf(["validator", "miner"] as const), requiredFor: ["node-agent"], description: "Type of node." }),
  variable({ name: "MYCELIUM_PUBLIC_KEY", group: "node", field: "publicKey", kind: hexKey(), requiredFor: ["node-agent"], description: "Node's Ed25519 public key (raw 32 bytes, hex); the node id is derived from it." }),
  variable({ name: "MYCELIUM_PRIVATE_KEY", group: "node", field: "privateKey", kind: hexKey(), secret: true, requiredFor: ["node-agent"], description: "Node's Ed25519 private key (raw 32-byte seed, hex); signs its registration." }),
  variable({ name: "MYCELIUM_VALIDATOR_WEIGHT", group: "node", field: "validatorWeight", kind: decimal({ greaterThan: 0 }), default: "1", description: "Node's validator weight in shard placement." }),
  variable({
    name: "MYCELIUM_MINER_CAPACITY",
    group: "node",
    field: "minerCapacityGb",
    kind: decimal({ greaterThan: 0 }),
    requiredWhen: { variable: "MYCELIUM_NODE_TYPE", equals: "miner" },
    description: "Node's storage capacity in GB (required for miners).",
  }),

  // Database
  variable({ name: "MYCELIUM_DATABASE_TYPE", group: "database", field: "type", kind: oneOf(["sqlite", "postgres"] as const), default: "sqlite", description: "Database backend type." }),
  variable({
    name: "MYCELIUM_DATABASE_URL",
    group: "database",
    field: "url",
    kind: postgresUrl(),
    requiredWhen: { variable: "MYCELIUM_DATABASE_TYPE", equals: "postgres" },
    description: "Database connection URL (required for PostgreSQL); the password is never printed.",
  }),
  variable({ name: "MYCELIUM_DATABASE_PATH", group: "database", field: "path", kind: text({ type: "path" }), default: "mycelium.db", description: "SQLite database file path." }),
  variable({ name: "MYCELIUM_DATABASE_MAX_CONNECTIONS", group: "database", field: "maxConnections", kind: integer(1), default: "10", description: "Maximum number of database connections." }),
  variable({ name: "MYCELIUM_DATABASE_IDLE_TIMEOUT", group: "database", field: "idleTimeoutMs", kind: duration(), default: "300", description: "Connection idle timeout (seconds, or with a unit)." }),
  variable({ name: "MYCELIUM_DATABASE_CONNECT_TIMEOUT", group: "database", field: "connectTimeoutMs", kind: duration(), default: "10", description: "Connection timeout (seconds, or with a unit)." }),
  variable({
    name: "MYCELIUM_DATABASE_SSL_MODE",
    group: "database",
    field: "sslMode",
    kind: oneOf(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const),
    default: "prefer",
    description: "PostgreSQL SSL mode.",
  }),
  variable({ name: "MYCELIUM_DATABASE_STATEMENT_CACHE", group: "database", field: "statementCacheSize", kind: integer(0), default: "1000", description: "Statement cache size; 0 disables the cache." }),

  // Transactions
  variable({ name: "MYCELIUM_TRANSACTION_TIMEOUT", group: "transactions", field: "transactionTimeoutMs", kind: duration(), default: "30", description: "An open transaction idle this long is aborted." }),
  variable({ name: "MYCELIUM_PREPARE_TIMEOUT", group: "transactions", field: "prepareTimeoutMs", kind: duration(), default: "5", description: "2PC prepare phase timeout; expiry aborts." }),
  variable({ name: "MYCELIUM_COMMIT_TIMEOUT", group: "transactions", field: "commitTimeoutMs", kind: duration(), default: "5", description: "Bound on one 2PC commit attempt (a decided commit is retried until done)." }),
  variable({ name: "MYCELIUM_MAX_TRANSACTIONS", group: "transactions", field: "maxTransactions", kind: integer(1), default: "1000", description: "Maximum concurrent transactions." }),
  variable({ name: "MYCELIUM_CLEANUP_INTERVAL", group: "transactions", field: "cleanupIntervalMs", kind: duration(), default: "60", description: "Interval between prunings of finished transaction records." }),

  // Replication
  variable({ name: "MYCELIUM_REPLICATION_MODE", group: "replication", field: "mode", kind: oneOf(["primary", "secondary"] as const), default: "secondary", description: "Replication mode." }),
  variable({ name: "MYCELIUM_REPLICATION_PEERS", group: "replication", field: "peers", kind: list(hostPort()), default: "", description: "Comma-separated list of peer addresses (host:port)." }),
  variable({ name: "MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL", group: "replication", field: "heartbeatIntervalMs", kind: duration(), default: "5", description: "Heartbeat interval." }),
  variable({ name: "MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT", group: "replication", field: "heartbeatTimeoutMs", kind: duration(), default: "15", description: "A primary silent this long is failed over; longer than the interval." }),
  variable({ name: "MYCELIUM_REPLICATION_RETRY_INITIAL", group: "replication", field: "retryInitialMs", kind: duration(), default: "1", description: "Initial retry delay." }),
  variable({ name: "MYCELIUM_REPLICATION_RETRY_MAX", group: "replication", field: "retryMaxMs", kind: duration(), default: "60", description: "Maximum retry delay; at least the initial delay." }),
  variable({ name: "MYCELIUM_REPLICATION_RETRY_MULTIPLIER", group: "replication", field: "retryMultiplier", kind: decimal({ atLeast: 1 }), default: "2.0", description: "Retry backoff multiplier." }),

  // Sharding
  variable({ name: "MYCELIUM_DEFAULT_REPLICATION_FACTOR", group: "sharding", field: "defaultReplicationFactor", kind: decimal({ greaterThan: 0, atMost: 1 }), default: "0.5", description: "Default table replication factor (fraction of eligible nodes)." }),
  variable({ name: "MYCELIUM_MIN_VALIDATOR_COPIES", group: "sharding", field: "minValidatorCopies", kind: integer(0), default: "2", description: "Minimum validator copies per shard." }),
  variable({ name: "MYCELIUM_MAX_SHARD_SIZE", group: "sharding", field: "maxShardSizeBytes", kind: size(), default: "1GB", description: "Range shards above this size are split (bytes, or with a unit; 1GB = 10^9 bytes, 1GiB = 2^30)." }),
  variable({ name: "MYCELIUM_REBALANCE_INTERVAL", group: "sharding", field: "rebalanceIntervalMs", kind: duration(), default: "3600", description: "Shard rebalancing interval." }),
  variable({ name: "MYCELIUM_LOAD_THRESHOLD", group: "sharding", field: "loadThreshold", kind: decimal({ greaterThan: 0, atMost: 1 }), default: "0.8", description: "Node load above which rebalancing sheds shards." }),

  // Security
  variable({ name: "MYCELIUM_TLS_CERT_PATH", group: "security", field: "tlsCertPath", kind: filePath(), requiredFor: servers, description: "Path to this process's TLS certificate (PEM) carrying its spiffe:// identity." }),
  variable({ name: "MYCELIUM_TLS_KEY_PATH", group: "security", field: "tlsKeyPath", kind: filePath(), requiredFor: servers, description: "Path to its TLS private key (PEM)." }),
  variable({ name: "MYCELIUM_TLS_CA_PATH", group: "security", field: "tlsCaPath", kind: filePath(), requiredFor: servers, description: "Path to the cluster CA certificate (PEM); the only trusted root." }),
  variable({ name: "MYCELIUM_TLS_VERIFY_CLIENT", group: "security", field: "tlsVerifyClient", kind: boolean(), default: "true", description: "Whether servers require and verify client certificates." }),
  variable({ name: "MYCELIUM_TLS_VERIFY_HOSTNAME", group: "security", field: "tlsVerifyHostname", kind: boolean(), default: "true", description: "Whether clients check the server certificate's DNS/IP names (the chain to the CA is always checked)." }),

  // Performance
  variable({ name: "MYCELIUM_MAX_PEERS", group: "performance", field: "maxPeers", kind: integer(1), default: "50", description: "Maximum number of peers." }),
  variable({ name: "MYCELIUM_CONNECTION_LIMIT", group: "performance", field: "connectionLimit", kind: integer(1), default: "100", description: "Maximum concurrent connections." }),
  variable({ name: "MYCELIUM_CONNECTION_TIMEOUT", group: "performance", field: "connectionTimeoutMs", kind: duration(), default: "30s", description: "Connection timeout." }),
  variable({ name: "MYCELIUM_PING_INTERVAL", group: "performance", field: "pingIntervalMs", kind: duration(), default: "30s", description: "Peer ping interval." }),
  variable({ name: "MYCELIUM_SYNC_INTERVAL", group: "performance", field: "syncIntervalMs", kind: duration(), default: "60s", description: "State sync interval." }),

  // Mycelium's own
  variable({
    name: "MYCELIUM_ADVERTISE_ADDRESS",
    group: "cluster",
    field: "advertiseAddress",
    kind: hostPort(),
    derived: {
      description: "HOST:PORT, with 127.0.0.1 for 0.0.0.0 (and [::1] for ::); unset when PORT is 0",
      derive: ({ network }) => {
        if (network.port === 0) return undefined;
        const reachable = network.host === "0.0.0.0" ? "127.0.0.1" : network.host === "::" ? "::1" : network.host;
        return joinHostPort(reachable, network.port);
      },
    },
    description: "host:port other services use to reach this one.",
  }),
  variable({ name: "MYCELIUM_ROUTER_ADDRESS", group: "cluster", field: "routerAddress", kind: hostPort(), requiredFor: ["coordinator", "replicator", "node-agent"], description: "host:port of the shard-router." }),
  variable({ name: "MYCELIUM_COORDINATOR_ADDRESS", group: "cluster", field: "coordinatorAddress", kind: hostPort(), requiredFor: ["node-agent", "cli"], description: "host:port of the coordinator (node-agents ask it for 2PC decisions)." }),
  variable({ name: "MYCELIUM_CONTROL_STORE_URL", group: "cluster", field: "controlStoreUrl", kind: controlStoreUrl(), default: "sqlite:mycelium-control.db", description: "Control store: \"sqlite:<path>\" or a PostgreSQL URL; the password is never printed." }),
  variable({ name: "MYCELIUM_METRICS_PORT", group: "cluster", field: "metricsPort", kind: port(), default: "9464", description: "Plain-HTTP port for /metrics and /healthz; 0 disables it." }),
  variable({ name: "MYCELIUM_LOG_LEVEL", group: "cluster", field: "logLevel", kind: oneOf(["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const), default: "info", description: "Log level." }),
  variable({
    name: "MYCELIUM_NAME",
    group: "cluster",
    field: "serviceName",
    // The <name> segment of spiffe://<network>/<role>/<name>.
    kind: text({ type: "name", expected: "1-128 letters, digits, '.', '-' or '_', starting with a letter or digit", pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/ }),
    derived: {
      description: "the node id for a node-agent, otherwise the service name",
      derive: ({ node }, service) => (service === "node-agent" ? (node.publicKey ? nodeIdFromPublicKeyHex(node.publicKey) : undefined) : service),
    },
    description: "Instance name: the <name> in this process's certificate identity spiffe://<network>/<role>/<name>.",
  }),
  variable({
    name: "MYCELIUM_DATA_DIR",
    group: "cluster",
    field: "dataDir",
    kind: text({ type: "path" }),
    derived: { description: "the directory of DATABASE_PATH", derive: ({ database }) => dirname(database.path) },
    description: "Directory where a node-agent keeps its shard files.",
  }),
  variable({ name: "MYCELIUM_TRACE_FILE", group: "cluster", field: "traceFile", kind: text({ type: "path" }), description: "Also append finished spans to this file as JSON lines." }),
  variable({
    name: "MYCELIUM_FAULT_POINTS",
    group: "cluster",
    field: "faultPoints",
    kind: list(oneOf(faultPointNames)),
    default: "",
    description: "Testing only: the process kills itself (SIGKILL) the first time it reaches one of these points, to test crash recovery. Never set in production.",
  }),
]);

/** Every variable, for tools and docs (docs/configuration.md is generated from this table). */
export const configVariables: ReadonlyArray<VariableSpec> = variableDefinitions;

export const configGroupTitles: Readonly<Record<ConfigGroup, string>> = Object.freeze({
  network: "Network",
  node: "Node identity",
  database: "Database",
  transactions: "Transactions",
  replication: "Replication",
  sharding: "Sharding",
  security: "Security",
  performance: "Performance",
  cluster: "Cluster (Mycelium's own)",
});
