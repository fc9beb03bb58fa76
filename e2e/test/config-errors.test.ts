/**
 * Every configuration variable, given a bad value, stops the real service process at start with a
 * non-zero exit and a message naming the variable (issue 2). A valid environment is made by the same
 * code `mycelium up` uses; then one variable at a time is spoiled.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalCluster, mainPath, type ServiceSpec } from "@mycelium/cli";
import { configVariables } from "@mycelium/config";

jest.setTimeout(180_000);

const badValues: Record<string, string> = {
  host: "not a host!",
  port: "70000",
  "network id": "Bad Network!",
  version: "1.0",
  "validator | miner": "archer",
  "hex (64)": "zz",
  number: "-1",
  "sqlite | postgres": "mysql",
  url: "mysql://somewhere/db",
  integer: "1.5",
  duration: "soon",
  "disable | allow | prefer | require | verify-ca | verify-full": "always",
  "primary | secondary": "tertiary",
  "list of host:port": "a:1,,b:2",
  size: "1XB",
  file: "/nonexistent/mycelium.pem",
  boolean: "maybe",
  "host:port": "no-port-here",
  "trace | debug | info | warn | error | fatal | silent": "loud",
  name: "bad name!",
};

const badByName: Record<string, string> = {
  MYCELIUM_FAULT_POINTS: "coordinator.somewhere",
};

const badPaths: Record<string, string> = {
  // An existing file where a directory is needed, and a "directory" that is a file.
  MYCELIUM_DATA_DIR: "/etc/hostname",
  MYCELIUM_DATABASE_PATH: "/etc/hostname/node.db",
  MYCELIUM_TRACE_FILE: "/etc/hostname/traces.jsonl",
};

let dataDir: string;
let specs: ServiceSpec[];

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-config-"));
  const cluster = new LocalCluster({ dataDir, basePort: 0, validators: 1, miners: 0 });
  await cluster.prepare();
  specs = cluster.serviceSpecs();
});

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function run(spec: ServiceSpec, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [mainPath(spec.role)], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    // A process that accepted its configuration keeps running: stop it and report that.
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function specFor(variable: string): ServiceSpec {
  // Node variables are validated where they are used; the rest on every service, so spread them out.
  const role = /NODE_TYPE|PUBLIC_KEY|PRIVATE_KEY|VALIDATOR_WEIGHT|MINER_CAPACITY|DATABASE_|DATA_DIR|COORDINATOR_ADDRESS/.test(variable)
    ? "node-agent"
    : (["coordinator", "shard-router", "replicator", "node-agent"] as const)[variable.length % 4];
  return specs.find((s) => s.role === role)!;
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

test("a bad value of every variable stops the process and names the variable", async () => {
  const cases = configVariables.map((variable) => ({ name: variable.name, value: badPaths[variable.name] ?? badByName[variable.name] ?? badValues[variable.type] }));
  const untested = cases.filter((c) => c.value === undefined).map((c) => c.name);
  expect(untested).toEqual([]);
  const failures: string[] = [];
  await inBatches(cases, 4, async ({ name, value }) => {
    const spec = specFor(name);
    const env = { ...spec.env, [name]: value! };
    if (name === "MYCELIUM_MINER_CAPACITY") env.MYCELIUM_NODE_TYPE = "miner";
    if (name === "MYCELIUM_DATABASE_URL") env.MYCELIUM_DATABASE_TYPE = "postgres";
    const { code, stderr } = await run(spec, env);
    if (code === 0 || code === null || !stderr.includes(name)) failures.push(`${name}=${value} on ${spec.role}: exit ${code}, stderr: ${stderr.slice(0, 300)}`);
  });
  expect(failures).toEqual([]);
});

test("a missing required variable, an unknown variable and a cross-field conflict are each named", async () => {
  const node = specs.find((s) => s.role === "node-agent")!;
  const { MYCELIUM_NODE_TYPE: _dropped, ...withoutType } = node.env;
  const missing = await run(node, withoutType);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/MYCELIUM_NODE_TYPE: expected one of "validator", "miner".*but it is not set/);

  const unknown = await run(node, { ...node.env, MYCELIUM_PROT: "1" });
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("MYCELIUM_PROT: unknown variable");
  expect(unknown.stderr).toContain("did you mean MYCELIUM_PORT?");

  const crossed = await run(node, { ...node.env, MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: "5s", MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: "1s" });
  expect(crossed.code).toBe(2);
  expect(crossed.stderr).toContain("MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT");
});
