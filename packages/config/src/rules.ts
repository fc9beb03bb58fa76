import type { ConfigIssue } from "./config-error";
import { ed25519PublicKeyHex } from "./node-key";
import type { MyceliumConfig, ServiceName } from "./types";
import { compareVersions } from "./value-kinds";
import { formatDurationMs } from "./units";

/**
 * A rule over several variables. loadConfig skips a rule when one of its variables is already wrong,
 * so one typo produces one message, not a cascade.
 */
export interface CrossFieldRule {
  readonly variables: readonly string[];
  check(config: MyceliumConfig, context: { service: ServiceName; shown(variable: string): string | undefined }): ConfigIssue | undefined;
}

export const crossFieldRules: readonly CrossFieldRule[] = [
  {
    variables: ["MYCELIUM_MIN_PROTOCOL_VERSION", "MYCELIUM_PROTOCOL_VERSION"],
    check: ({ network }, { shown }) =>
      compareVersions(network.minProtocolVersion, network.protocolVersion) > 0
        ? invalid("MYCELIUM_MIN_PROTOCOL_VERSION", `a version ≤ MYCELIUM_PROTOCOL_VERSION (${network.protocolVersion})`, shown)
        : undefined,
  },
  {
    variables: ["MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT", "MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL"],
    check: ({ replication }, { shown }) =>
      replication.heartbeatTimeoutMs <= replication.heartbeatIntervalMs
        ? invalid(
            "MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT",
            `a duration longer than MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL (${formatDurationMs(replication.heartbeatIntervalMs)})`,
            shown,
          )
        : undefined,
  },
  {
    variables: ["MYCELIUM_REPLICATION_RETRY_INITIAL", "MYCELIUM_REPLICATION_RETRY_MAX"],
    check: ({ replication }, { shown }) =>
      replication.retryInitialMs > replication.retryMaxMs
        ? invalid("MYCELIUM_REPLICATION_RETRY_INITIAL", `a duration ≤ MYCELIUM_REPLICATION_RETRY_MAX (${formatDurationMs(replication.retryMaxMs)})`, shown)
        : undefined,
  },
  {
    // A mismatched pair would register a node whose signatures never verify; say so at start instead.
    variables: ["MYCELIUM_PUBLIC_KEY", "MYCELIUM_PRIVATE_KEY"],
    check: ({ node }, { shown }) =>
      node.publicKey !== undefined && node.privateKey !== undefined && ed25519PublicKeyHex(node.privateKey) !== node.publicKey
        ? invalid("MYCELIUM_PUBLIC_KEY", "the Ed25519 public key of MYCELIUM_PRIVATE_KEY", shown)
        : undefined,
  },
  {
    variables: ["MYCELIUM_TLS_CERT_PATH", "MYCELIUM_TLS_KEY_PATH"],
    check: ({ security }) =>
      security.tlsCertPath !== undefined && security.tlsKeyPath === undefined
        ? { variable: "MYCELIUM_TLS_KEY_PATH", expected: "a path to a readable file (set together with MYCELIUM_TLS_CERT_PATH)", reason: "missing" }
        : security.tlsKeyPath !== undefined && security.tlsCertPath === undefined
          ? { variable: "MYCELIUM_TLS_CERT_PATH", expected: "a path to a readable file (set together with MYCELIUM_TLS_KEY_PATH)", reason: "missing" }
          : undefined,
  },
  {
    variables: ["MYCELIUM_METRICS_PORT", "MYCELIUM_PORT"],
    check: ({ network, cluster }, { shown }) =>
      cluster.metricsPort !== 0 && cluster.metricsPort === network.port
        ? invalid("MYCELIUM_METRICS_PORT", `a port other than MYCELIUM_PORT (${network.port}), or 0 to disable metrics`, shown)
        : undefined,
  },
];

function invalid(variable: string, expected: string, shown: (variable: string) => string | undefined): ConfigIssue {
  const received = shown(variable);
  return received === undefined ? { variable, expected, reason: "invalid" } : { variable, expected, received, reason: "invalid" };
}
