import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configVariables, loadConfig, type MyceliumConfig, type ServiceName } from "@mycelium/config";

// RFC 8032, test 1: a real Ed25519 pair.
const privateKey = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const otherPublicKey = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

let dir: string;
let tls: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mycelium-config-"));
  for (const file of ["node.crt", "node.key", "ca.crt"]) writeFileSync(join(dir, file), "PEM\n");
  mkdirSync(join(dir, "a-directory"));
  tls = {
    MYCELIUM_TLS_CERT_PATH: join(dir, "node.crt"),
    MYCELIUM_TLS_KEY_PATH: join(dir, "node.key"),
    MYCELIUM_TLS_CA_PATH: join(dir, "ca.crt"),
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The smallest valid environment for each service. */
function minimalEnv(service: ServiceName): Record<string, string> {
  switch (service) {
    case "shard-router":
      return { ...tls };
    case "coordinator":
    case "replicator":
      return { ...tls, MYCELIUM_ROUTER_ADDRESS: "127.0.0.1:7001" };
    case "node-agent":
      return {
        ...tls,
        MYCELIUM_ROUTER_ADDRESS: "127.0.0.1:7001",
        MYCELIUM_COORDINATOR_ADDRESS: "127.0.0.1:7000",
        MYCELIUM_NODE_TYPE: "validator",
        MYCELIUM_PUBLIC_KEY: publicKey,
        MYCELIUM_PRIVATE_KEY: privateKey,
      };
    case "cli":
      return { MYCELIUM_COORDINATOR_ADDRESS: "127.0.0.1:7000" };
  }
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError, but loadConfig succeeded");
}

describe("defaults", () => {
  it("are the seed README's defaults, in milliseconds and bytes", () => {
    const config = loadConfig(minimalEnv("shard-router"), { service: "shard-router" });
    const expected: MyceliumConfig = {
      network: { host: "0.0.0.0", port: 8080, p2pPort: 9090, networkId: "testnet", protocolVersion: "1.0.0", minProtocolVersion: "1.0.0" },
      node: { validatorWeight: 1 },
      database: {
        type: "sqlite",
        path: "mycelium.db",
        maxConnections: 10,
        idleTimeoutMs: 300_000,
        connectTimeoutMs: 10_000,
        sslMode: "prefer",
        statementCacheSize: 1000,
      },
      transactions: { transactionTimeoutMs: 30_000, prepareTimeoutMs: 5_000, commitTimeoutMs: 5_000, maxTransactions: 1000, cleanupIntervalMs: 60_000 },
      replication: {
        mode: "secondary",
        peers: [],
        heartbeatIntervalMs: 5_000,
        heartbeatTimeoutMs: 15_000,
        retryInitialMs: 1_000,
        retryMaxMs: 60_000,
        retryMultiplier: 2,
      },
      sharding: { defaultReplicationFactor: 0.5, minValidatorCopies: 2, maxShardSizeBytes: 1_000_000_000, rebalanceIntervalMs: 3_600_000, loadThreshold: 0.8 },
      security: {
        tlsCertPath: tls.MYCELIUM_TLS_CERT_PATH,
        tlsKeyPath: tls.MYCELIUM_TLS_KEY_PATH,
        tlsCaPath: tls.MYCELIUM_TLS_CA_PATH,
        tlsVerifyClient: true,
        tlsVerifyHostname: true,
      },
      performance: { maxPeers: 50, connectionLimit: 100, connectionTimeoutMs: 30_000, pingIntervalMs: 30_000, syncIntervalMs: 60_000 },
      cluster: {
        advertiseAddress: "127.0.0.1:8080",
        controlStoreUrl: "sqlite:mycelium-control.db",
        metricsPort: 9464,
        logLevel: "info",
        faultPoints: [],
        serviceName: "shard-router",
        dataDir: ".",
      },
    };
    expect(config).toEqual(expected);
  });

  it("fills every field of MyceliumConfig from exactly one variable", () => {
    const config = loadConfig(
      {
        ...minimalEnv("node-agent"),
        MYCELIUM_NODE_TYPE: "miner",
        MYCELIUM_MINER_CAPACITY: "10",
        MYCELIUM_DATABASE_URL: "postgres://u:p@db:5432/x",
        MYCELIUM_TRACE_FILE: "/tmp/trace.jsonl",
      },
      { service: "node-agent" },
    );
    const fields = Object.entries(config).flatMap(([group, values]) => Object.keys(values as object).map((field) => `${group}.${field}`));
    const specified = configVariables.map((spec) => `${spec.group}.${spec.field}`);
    expect(new Set(specified).size).toBe(specified.length);
    expect([...fields].sort()).toEqual([...specified].sort());
  });

  it("returns a deeply frozen object", () => {
    const config = loadConfig(minimalEnv("shard-router"), { service: "shard-router" });
    expect(Object.isFrozen(config.network)).toBe(true);
    expect(Object.isFrozen(config.replication.peers)).toBe(true);
    expect(() => {
      (config.network as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it("derives the advertise address, instance name and data directory", () => {
    const router = loadConfig({ ...minimalEnv("shard-router"), MYCELIUM_HOST: "::", MYCELIUM_PORT: "7001", MYCELIUM_DATABASE_PATH: "/var/lib/m/router.db" }, { service: "shard-router" });
    expect(router.cluster.advertiseAddress).toBe("[::1]:7001");
    expect(router.cluster.dataDir).toBe("/var/lib/m");
    const ephemeral = loadConfig({ ...minimalEnv("shard-router"), MYCELIUM_PORT: "0" }, { service: "shard-router" });
    expect(ephemeral.cluster.advertiseAddress).toBeUndefined();
    const agent = loadConfig(minimalEnv("node-agent"), { service: "node-agent" });
    // The same vector is asserted in @mycelium/tls (nodeIdFromPublicKey), keeping the two derivations equal.
    expect(agent.cluster.serviceName).toBe("n21fe31dfa154a261626b");
    const named = loadConfig({ ...minimalEnv("node-agent"), MYCELIUM_NAME: "validator-1", MYCELIUM_ADVERTISE_ADDRESS: "node-1.svc:7100" }, { service: "node-agent" });
    expect(named.cluster.serviceName).toBe("validator-1");
    expect(named.cluster.advertiseAddress).toBe("node-1.svc:7100");
  });

  it("treats an empty or blank value as unset", () => {
    const config = loadConfig({ ...minimalEnv("shard-router"), MYCELIUM_PORT: "", MYCELIUM_LOG_LEVEL: "  " }, { service: "shard-router" });
    expect(config.network.port).toBe(8080);
    expect(config.cluster.logLevel).toBe("info");
  });
});

describe("accepted spellings", () => {
  const cases: ReadonlyArray<[variable: string, text: string, read: (config: MyceliumConfig) => unknown, expected: unknown]> = [
    ["MYCELIUM_TRANSACTION_TIMEOUT", "30", (c) => c.transactions.transactionTimeoutMs, 30_000],
    ["MYCELIUM_TRANSACTION_TIMEOUT", "500ms", (c) => c.transactions.transactionTimeoutMs, 500],
    ["MYCELIUM_TRANSACTION_TIMEOUT", "1.5s", (c) => c.transactions.transactionTimeoutMs, 1_500],
    ["MYCELIUM_TRANSACTION_TIMEOUT", "0.25", (c) => c.transactions.transactionTimeoutMs, 250],
    ["MYCELIUM_REBALANCE_INTERVAL", "5m", (c) => c.sharding.rebalanceIntervalMs, 300_000],
    ["MYCELIUM_REBALANCE_INTERVAL", "2h", (c) => c.sharding.rebalanceIntervalMs, 7_200_000],
    ["MYCELIUM_MAX_SHARD_SIZE", "512MiB", (c) => c.sharding.maxShardSizeBytes, 512 * 2 ** 20],
    ["MYCELIUM_MAX_SHARD_SIZE", "1kb", (c) => c.sharding.maxShardSizeBytes, 1_000],
    ["MYCELIUM_MAX_SHARD_SIZE", "4096", (c) => c.sharding.maxShardSizeBytes, 4_096],
    ["MYCELIUM_TLS_VERIFY_CLIENT", "No", (c) => c.security.tlsVerifyClient, false],
    ["MYCELIUM_TLS_VERIFY_CLIENT", "0", (c) => c.security.tlsVerifyClient, false],
    ["MYCELIUM_TLS_VERIFY_HOSTNAME", "FALSE", (c) => c.security.tlsVerifyHostname, false],
    ["MYCELIUM_TLS_VERIFY_HOSTNAME", "yes", (c) => c.security.tlsVerifyHostname, true],
    ["MYCELIUM_REPLICATION_PEERS", " 10.0.0.1:7000 , node-2:7000,[::1]:7000 ", (c) => c.replication.peers, ["10.0.0.1:7000", "node-2:7000", "[::1]:7000"]],
    ["MYCELIUM_LOG_LEVEL", "DEBUG", (c) => c.cluster.logLevel, "debug"],
    ["MYCELIUM_DATABASE_SSL_MODE", "verify-full", (c) => c.database.sslMode, "verify-full"],
    ["MYCELIUM_REPLICATION_RETRY_MULTIPLIER", "1.5", (c) => c.replication.retryMultiplier, 1.5],
    ["MYCELIUM_PORT", " 9000 ", (c) => c.network.port, 9000],
    ["MYCELIUM_CONTROL_STORE_URL", "postgres://m:pw@pg:5432/control", (c) => c.cluster.controlStoreUrl, "postgres://m:pw@pg:5432/control"],
  ];
  it.each(cases)("%s=%j", (variable, text, read, expected) => {
    expect(read(loadConfig({ ...minimalEnv("shard-router"), [variable]: text }, { service: "shard-router" }))).toEqual(expected);
  });
});

describe("every variable rejects a bad value, naming the variable", () => {
  // At least one bad value per variable; the test below fails when a variable is added without one.
  const badValues: Readonly<Record<string, readonly string[]>> = {
    MYCELIUM_HOST: ["not a host", "-leading-dash"],
    MYCELIUM_PORT: ["abc", "65536", "-1", "80.5"],
    MYCELIUM_P2P_PORT: ["70000"],
    MYCELIUM_NETWORK_ID: ["Test Net", "UPPER"],
    MYCELIUM_PROTOCOL_VERSION: ["1.0", "v1.0.0", "1.0.0-beta"],
    MYCELIUM_MIN_PROTOCOL_VERSION: ["1"],
    MYCELIUM_NODE_TYPE: ["archiver"],
    MYCELIUM_PUBLIC_KEY: ["abc", "zz".repeat(32)],
    MYCELIUM_PRIVATE_KEY: ["12345", "g".repeat(64)],
    MYCELIUM_VALIDATOR_WEIGHT: ["0", "heavy", "-1"],
    MYCELIUM_MINER_CAPACITY: ["0", "lots"],
    MYCELIUM_DATABASE_TYPE: ["mysql"],
    MYCELIUM_DATABASE_URL: ["mysql://u@h/db", "postgres://"],
    MYCELIUM_DATABASE_PATH: [],
    MYCELIUM_DATABASE_MAX_CONNECTIONS: ["0", "ten"],
    MYCELIUM_DATABASE_IDLE_TIMEOUT: ["0", "5 minutes", "-3"],
    MYCELIUM_DATABASE_CONNECT_TIMEOUT: ["10d"],
    MYCELIUM_DATABASE_SSL_MODE: ["on"],
    MYCELIUM_DATABASE_STATEMENT_CACHE: ["-1", "1e3"],
    MYCELIUM_TRANSACTION_TIMEOUT: ["30x", "1.0005s"],
    MYCELIUM_PREPARE_TIMEOUT: ["soon"],
    MYCELIUM_COMMIT_TIMEOUT: ["0ms"],
    MYCELIUM_MAX_TRANSACTIONS: ["0"],
    MYCELIUM_CLEANUP_INTERVAL: ["1000h"],
    MYCELIUM_REPLICATION_MODE: ["leader"],
    MYCELIUM_REPLICATION_PEERS: ["a:1,,b:2", "node-1", "node-1:0"],
    MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: ["fast"],
    MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: ["slow"],
    MYCELIUM_REPLICATION_RETRY_INITIAL: ["x"],
    MYCELIUM_REPLICATION_RETRY_MAX: ["0"],
    MYCELIUM_REPLICATION_RETRY_MULTIPLIER: ["0.5", "double"],
    MYCELIUM_DEFAULT_REPLICATION_FACTOR: ["0", "1.5", "half"],
    MYCELIUM_MIN_VALIDATOR_COPIES: ["-2", "two"],
    MYCELIUM_MAX_SHARD_SIZE: ["0", "1XB", "big", "1.5"],
    MYCELIUM_REBALANCE_INTERVAL: ["hourly"],
    MYCELIUM_LOAD_THRESHOLD: ["0", "1.01"],
    MYCELIUM_TLS_CERT_PATH: ["/nonexistent/node.crt"],
    MYCELIUM_TLS_KEY_PATH: ["/nonexistent/node.key"],
    MYCELIUM_TLS_CA_PATH: ["/nonexistent/ca.crt"],
    MYCELIUM_TLS_VERIFY_CLIENT: ["maybe"],
    MYCELIUM_TLS_VERIFY_HOSTNAME: ["2"],
    MYCELIUM_MAX_PEERS: ["0"],
    MYCELIUM_CONNECTION_LIMIT: ["unlimited"],
    MYCELIUM_CONNECTION_TIMEOUT: ["30 s s"],
    MYCELIUM_PING_INTERVAL: ["-30s"],
    MYCELIUM_SYNC_INTERVAL: ["1w"],
    MYCELIUM_ADVERTISE_ADDRESS: ["localhost", "::1:8080"],
    MYCELIUM_ROUTER_ADDRESS: ["router"],
    MYCELIUM_COORDINATOR_ADDRESS: ["coordinator:99999"],
    MYCELIUM_CONTROL_STORE_URL: ["mysql://x", "sqlite:"],
    MYCELIUM_METRICS_PORT: ["metrics"],
    MYCELIUM_LOG_LEVEL: ["verbose"],
    MYCELIUM_NAME: ["has space", "../escape", "-dash"],
    MYCELIUM_DATA_DIR: [],
    MYCELIUM_FAULT_POINTS: ["coordinator.somewhere", "node.after-prepare,,node.after-vote"],
    MYCELIUM_TRACE_FILE: [],
  };
  // Free-form paths: any non-blank text is a valid path, and blank means unset. Their validity is the
  // filesystem's business when used.
  const freeForm = new Set(["MYCELIUM_DATABASE_PATH", "MYCELIUM_DATA_DIR", "MYCELIUM_TRACE_FILE"]);

  it("covers every variable", () => {
    expect(Object.keys(badValues).sort()).toEqual(configVariables.map((spec) => spec.name).sort());
    for (const [name, values] of Object.entries(badValues)) {
      if (!freeForm.has(name)) expect(values.length).toBeGreaterThan(0);
    }
  });

  const cases = Object.entries(badValues).flatMap(([variable, values]) => values.map((value) => [variable, value] as const));
  it.each(cases)("%s=%j", (variable, value) => {
    const env = { ...minimalEnv("node-agent"), MYCELIUM_NODE_TYPE: "miner", MYCELIUM_MINER_CAPACITY: "100", [variable]: value };
    const error = configError(() => loadConfig(env, { service: "node-agent" }));
    expect(error.issues.map((issue) => issue.variable)).toEqual([variable]);
    expect(error.message.startsWith(`${variable}: expected `)).toBe(true);
    const spec = configVariables.find((candidate) => candidate.name === variable)!;
    if (spec.secret) expect(error.message).not.toContain(value);
    else expect(error.message).toContain(JSON.stringify(value));
  });

  it("formats the message as the variable, what it expected and what it got", () => {
    const error = configError(() => loadConfig({ ...minimalEnv("shard-router"), MYCELIUM_PORT: "abc" }, { service: "shard-router" }));
    expect(error.message).toBe('MYCELIUM_PORT: expected an integer port 0-65535, got "abc"');
    expect(error.issues).toEqual([{ variable: "MYCELIUM_PORT", expected: "an integer port 0-65535", received: "abc", reason: "invalid" }]);
  });

  it("reports every problem at once, one line each", () => {
    const env = { ...minimalEnv("shard-router"), MYCELIUM_PORT: "abc", MYCELIUM_LOAD_THRESHOLD: "2", MYCELIUM_TLS_VERIFY_CLIENT: "maybe" };
    const error = configError(() => loadConfig(env, { service: "shard-router" }));
    expect(error.message.split("\n").map((line) => line.split(":")[0])).toEqual(["MYCELIUM_PORT", "MYCELIUM_LOAD_THRESHOLD", "MYCELIUM_TLS_VERIFY_CLIENT"]);
  });

  it("says which TLS file is unusable and why", () => {
    const env = { ...minimalEnv("coordinator"), MYCELIUM_TLS_KEY_PATH: join(dir, "missing.key"), MYCELIUM_TLS_CA_PATH: join(dir, "a-directory") };
    const error = configError(() => loadConfig(env, { service: "coordinator" }));
    expect(error.message).toBe(
      [
        `MYCELIUM_TLS_KEY_PATH: expected a path to a readable file, got ${JSON.stringify(join(dir, "missing.key"))} (no such file)`,
        `MYCELIUM_TLS_CA_PATH: expected a path to a readable file, got ${JSON.stringify(join(dir, "a-directory"))} (not a regular file)`,
      ].join("\n"),
    );
  });
});

describe("required variables come from the table, per service", () => {
  const missing = (env: Record<string, string>, service: ServiceName) =>
    configError(() => loadConfig(env, { service }))
      .issues.filter((issue) => issue.reason === "missing")
      .map((issue) => issue.variable);

  it("node-agent needs its type, key pair, router and coordinator", () => {
    expect(missing(tls, "node-agent")).toEqual([
      "MYCELIUM_NODE_TYPE",
      "MYCELIUM_PUBLIC_KEY",
      "MYCELIUM_PRIVATE_KEY",
      "MYCELIUM_ROUTER_ADDRESS",
      "MYCELIUM_COORDINATOR_ADDRESS",
    ]);
    const error = configError(() => loadConfig(tls, { service: "node-agent" }));
    expect(error.message).toContain('MYCELIUM_NODE_TYPE: expected one of "validator", "miner" (required for node-agent), but it is not set');
  });

  it("a miner needs its capacity, a validator does not", () => {
    const env = { ...minimalEnv("node-agent"), MYCELIUM_NODE_TYPE: "miner" };
    expect(missing(env, "node-agent")).toEqual(["MYCELIUM_MINER_CAPACITY"]);
    expect(configError(() => loadConfig(env, { service: "node-agent" })).message).toContain("(required when MYCELIUM_NODE_TYPE=miner)");
    expect(loadConfig({ ...env, MYCELIUM_MINER_CAPACITY: "2.5" }, { service: "node-agent" }).node.minerCapacityGb).toBe(2.5);
    expect(loadConfig(minimalEnv("node-agent"), { service: "node-agent" }).node.minerCapacityGb).toBeUndefined();
  });

  it("postgres needs a DATABASE_URL", () => {
    expect(missing({ ...minimalEnv("shard-router"), MYCELIUM_DATABASE_TYPE: "postgres" }, "shard-router")).toEqual(["MYCELIUM_DATABASE_URL"]);
  });

  it.each(["coordinator", "shard-router", "replicator", "node-agent"] as const)("%s needs the three TLS paths (mTLS everywhere)", (service) => {
    const env = minimalEnv(service);
    delete env.MYCELIUM_TLS_CERT_PATH;
    delete env.MYCELIUM_TLS_KEY_PATH;
    delete env.MYCELIUM_TLS_CA_PATH;
    expect(missing(env, service)).toEqual(["MYCELIUM_TLS_CERT_PATH", "MYCELIUM_TLS_KEY_PATH", "MYCELIUM_TLS_CA_PATH"]);
  });

  it("coordinator and replicator need the router; the router needs neither address", () => {
    expect(missing(tls, "coordinator")).toEqual(["MYCELIUM_ROUTER_ADDRESS"]);
    expect(missing(tls, "replicator")).toEqual(["MYCELIUM_ROUTER_ADDRESS"]);
    expect(loadConfig(tls, { service: "shard-router" }).cluster.routerAddress).toBeUndefined();
  });

  it("the cli needs the coordinator but no TLS files; given ones are still checked", () => {
    expect(missing({}, "cli")).toEqual(["MYCELIUM_COORDINATOR_ADDRESS"]);
    expect(loadConfig(minimalEnv("cli"), { service: "cli" }).security.tlsCertPath).toBeUndefined();
    const error = configError(() => loadConfig({ ...minimalEnv("cli"), MYCELIUM_TLS_CA_PATH: "/nonexistent/ca.crt" }, { service: "cli" }));
    expect(error.issues.map((issue) => issue.variable)).toEqual(["MYCELIUM_TLS_CA_PATH"]);
  });

  it("rejects an unknown service name from untyped callers", () => {
    expect(() => loadConfig({}, { service: "router" as ServiceName })).toThrow(TypeError);
  });
});

describe("cross-field rules", () => {
  const issuesFor = (extra: Record<string, string>, service: ServiceName = "node-agent") =>
    configError(() => loadConfig({ ...minimalEnv(service), ...extra }, { service })).message;

  it("MIN_PROTOCOL_VERSION may not exceed PROTOCOL_VERSION (numerically, not as text)", () => {
    expect(issuesFor({ MYCELIUM_MIN_PROTOCOL_VERSION: "1.2.0" })).toBe(
      'MYCELIUM_MIN_PROTOCOL_VERSION: expected a version ≤ MYCELIUM_PROTOCOL_VERSION (1.0.0), got "1.2.0"',
    );
    expect(loadConfig({ ...minimalEnv("node-agent"), MYCELIUM_PROTOCOL_VERSION: "1.10.0", MYCELIUM_MIN_PROTOCOL_VERSION: "1.9.0" }, { service: "node-agent" }).network.minProtocolVersion).toBe(
      "1.9.0",
    );
  });

  it("heartbeat timeout must be longer than the interval, even against a default", () => {
    expect(issuesFor({ MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: "15" })).toBe(
      'MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: expected a duration longer than MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL (15s), got "15 (default)"',
    );
    expect(issuesFor({ MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: "4s" })).toContain("MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: expected a duration longer than");
  });

  it("retry initial delay may not exceed the maximum", () => {
    expect(issuesFor({ MYCELIUM_REPLICATION_RETRY_INITIAL: "2m" })).toBe(
      'MYCELIUM_REPLICATION_RETRY_INITIAL: expected a duration ≤ MYCELIUM_REPLICATION_RETRY_MAX (1m), got "2m"',
    );
    expect(loadConfig({ ...minimalEnv("node-agent"), MYCELIUM_REPLICATION_RETRY_INITIAL: "60" }, { service: "node-agent" }).replication.retryInitialMs).toBe(60_000);
  });

  it("the public key must belong to the private key", () => {
    expect(issuesFor({ MYCELIUM_PUBLIC_KEY: otherPublicKey })).toBe(
      `MYCELIUM_PUBLIC_KEY: expected the Ed25519 public key of MYCELIUM_PRIVATE_KEY, got "${otherPublicKey}"`,
    );
  });

  it("TLS certificate and key come together, even for the cli", () => {
    expect(issuesFor({ MYCELIUM_TLS_CERT_PATH: tls.MYCELIUM_TLS_CERT_PATH! }, "cli")).toBe(
      "MYCELIUM_TLS_KEY_PATH: expected a path to a readable file (set together with MYCELIUM_TLS_CERT_PATH), but it is not set",
    );
  });

  it("metrics may not share the service port", () => {
    expect(issuesFor({ MYCELIUM_PORT: "9464" })).toContain("MYCELIUM_METRICS_PORT: expected a port other than MYCELIUM_PORT (9464)");
    expect(loadConfig({ ...minimalEnv("node-agent"), MYCELIUM_PORT: "9464", MYCELIUM_METRICS_PORT: "0" }, { service: "node-agent" }).cluster.metricsPort).toBe(0);
  });

  it("a rule over a variable that is already wrong stays silent (one typo, one message)", () => {
    const error = configError(() => loadConfig({ ...minimalEnv("node-agent"), MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: "fast" }, { service: "node-agent" }));
    expect(error.issues.map((issue) => issue.variable)).toEqual(["MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL"]);
  });
});

describe("unknown MYCELIUM_* variables", () => {
  it.each([
    ["MYCELIUM_PROT", "MYCELIUM_PORT"],
    ["MYCELIUM_NETWROK_ID", "MYCELIUM_NETWORK_ID"],
    ["MYCELIUM_TLS_CERT", "MYCELIUM_TLS_CERT_PATH"],
    ["MYCELIUM_REPLICATION_HEARTBEAT", "MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL or MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT"],
    ["MYCELIUM_REPLICATION_HEARTBEAT_INTERVL", "MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL"],
    ["MYCELIUM_FOO", undefined],
    ["MYCELIUM_WHATEVER", undefined],
  ])("%s suggests %s", (name, suggestion) => {
    const error = configError(() => loadConfig({ ...minimalEnv("shard-router"), [name]: "1" }, { service: "shard-router" }));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.variable).toBe(name);
    expect(error.message).toBe(
      suggestion
        ? `${name}: unknown variable, expected a known MYCELIUM_* variable; did you mean ${suggestion}?`
        : `${name}: unknown variable, expected a known MYCELIUM_* variable (see docs/configuration.md)`,
    );
  });

  it("ignores variables without the prefix", () => {
    expect(loadConfig({ ...minimalEnv("shard-router"), PORT: "abc", OTEL_SERVICE_NAME: "x" }, { service: "shard-router" }).network.port).toBe(8080);
  });
});
