import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, describeConfig, loadConfig, type MyceliumConfig } from "@mycelium/config";

const privateKey = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

let dir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mycelium-config-"));
  for (const file of ["node.crt", "node.key", "ca.crt"]) writeFileSync(join(dir, file), "PEM\n");
  env = {
    MYCELIUM_TLS_CERT_PATH: join(dir, "node.crt"),
    MYCELIUM_TLS_KEY_PATH: join(dir, "node.key"),
    MYCELIUM_TLS_CA_PATH: join(dir, "ca.crt"),
    MYCELIUM_ROUTER_ADDRESS: "127.0.0.1:7001",
    MYCELIUM_COORDINATOR_ADDRESS: "127.0.0.1:7000",
    MYCELIUM_NODE_TYPE: "validator",
    MYCELIUM_PUBLIC_KEY: publicKey,
    MYCELIUM_PRIVATE_KEY: privateKey,
    MYCELIUM_DATABASE_TYPE: "postgres",
    MYCELIUM_DATABASE_URL: "postgres://mycelium:s3cret-pw@db.internal:5432/node",
    MYCELIUM_CONTROL_STORE_URL: "postgresql://control:an0ther-pw@pg:5432/control",
    MYCELIUM_TRANSACTION_TIMEOUT: "45",
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function entry(config: MyceliumConfig, variable: string) {
  const found = describeConfig(config).find((candidate) => candidate.variable === variable);
  if (!found) throw new Error(`no entry for ${variable}`);
  return found;
}

describe("describeConfig", () => {
  it("never shows the private key or URL passwords", () => {
    const config = loadConfig(env, { service: "node-agent" });
    const text = JSON.stringify(describeConfig(config));
    expect(text).not.toContain(privateKey);
    expect(text).not.toContain("s3cret-pw");
    expect(text).not.toContain("an0ther-pw");
    expect(entry(config, "MYCELIUM_PRIVATE_KEY").value).toBe("<redacted>");
    expect(entry(config, "MYCELIUM_DATABASE_URL").value).toBe("postgres://mycelium:***@db.internal:5432/node");
    expect(entry(config, "MYCELIUM_CONTROL_STORE_URL").value).toBe("postgresql://control:***@pg:5432/control");
    expect(entry(config, "MYCELIUM_PUBLIC_KEY").value).toBe(publicKey);
  });

  it("shows values as they could be written back, and which are defaults", () => {
    const config = loadConfig(env, { service: "node-agent" });
    expect(entry(config, "MYCELIUM_TRANSACTION_TIMEOUT")).toEqual({ variable: "MYCELIUM_TRANSACTION_TIMEOUT", value: "45s", isDefault: false });
    expect(entry(config, "MYCELIUM_REBALANCE_INTERVAL")).toEqual({ variable: "MYCELIUM_REBALANCE_INTERVAL", value: "1h", isDefault: true });
    expect(entry(config, "MYCELIUM_MAX_SHARD_SIZE")).toEqual({ variable: "MYCELIUM_MAX_SHARD_SIZE", value: "1GB", isDefault: true });
    expect(entry(config, "MYCELIUM_NAME")).toEqual({ variable: "MYCELIUM_NAME", value: "n21fe31dfa154a261626b", isDefault: true });
    expect(entry(config, "MYCELIUM_MINER_CAPACITY")).toEqual({ variable: "MYCELIUM_MINER_CAPACITY", value: "", isDefault: true });
    expect(entry(config, "MYCELIUM_NODE_TYPE").isDefault).toBe(false);
    // Every entry's value loads back into the same configuration (secrets aside).
    const roundTrip: Record<string, string> = { MYCELIUM_PRIVATE_KEY: privateKey, MYCELIUM_DATABASE_URL: env.MYCELIUM_DATABASE_URL!, MYCELIUM_CONTROL_STORE_URL: env.MYCELIUM_CONTROL_STORE_URL! };
    for (const { variable, value } of describeConfig(config)) if (!(variable in roundTrip)) roundTrip[variable] = value;
    expect(loadConfig(roundTrip, { service: "node-agent" })).toEqual(config);
  });

  it("compares with the defaults for a config that loadConfig did not make", () => {
    const copy = structuredClone(loadConfig(env, { service: "node-agent" }));
    expect(entry(copy, "MYCELIUM_TRANSACTION_TIMEOUT").isDefault).toBe(false);
    expect(entry(copy, "MYCELIUM_PORT").isDefault).toBe(true);
  });
});

describe("error messages redact secrets too", () => {
  it("a malformed private key is not echoed", () => {
    const leaked = "ab".repeat(31) + "zz";
    try {
      loadConfig({ ...env, MYCELIUM_PRIVATE_KEY: leaked }, { service: "node-agent" });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toBe('MYCELIUM_PRIVATE_KEY: expected 64 hexadecimal characters (a raw 32-byte Ed25519 key), got "<redacted>"');
    }
  });

  it("a malformed URL keeps its password hidden", () => {
    try {
      loadConfig({ ...env, MYCELIUM_DATABASE_URL: "mysql://root:hunter2@db/x" }, { service: "node-agent" });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect((error as ConfigError).message).toContain('got "mysql://root:***@db/x"');
      expect((error as ConfigError).message).not.toContain("hunter2");
    }
  });
});
