/**
 * What the container image holds, proved without a container engine: deploy/image/build-app.sh (the Dockerfile's
 * build step) writes `pnpm deploy --prod` of the CLI into a directory of its own; a whole cluster then runs from that
 * directory alone, every service started through the image's entry point (`container-entrypoint.js <service>`), and
 * the README's statements are run through the entry point's CLI (`container-entrypoint.js mycelium …`). The same
 * directory installs outside the workspace with npm, for the `mycelium` command and the @mycelium/client SDK.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalCluster } from "@mycelium/cli";
import { fastTimings, runProcess } from "@mycelium/testkit";

jest.setTimeout(300_000);

const repo = path.resolve(__dirname, "../..");

/** Runs a command to completion (bounded) from `cwd`, with nothing from the workspace in its environment. */
function run(command: string, args: string[], options: { cwd: string; timeoutMs?: number; env?: Record<string, string> }) {
  return runProcess(command, args, { cwd: options.cwd, timeoutMs: options.timeoutMs ?? 60_000, env: { HOME: options.cwd, ...options.env } });
}

describe("the deployed application directory (the image's /app)", () => {
  let scratch: string;
  let app: string;
  let entry: string;
  let cluster: LocalCluster | undefined;
  let dataDir: string;

  beforeAll(async () => {
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-deployed-")));
    app = path.join(scratch, "app");
    const built = spawnSync("bash", [path.join(repo, "deploy/image/build-app.sh"), app], { encoding: "utf8", timeout: 240_000 });
    if (built.status !== 0) throw new Error(`build-app.sh failed (${built.status ?? built.signal}):\n${built.stdout}\n${built.stderr}`);
    entry = path.join(app, "bin", "container-entrypoint.js");
    dataDir = path.join(scratch, "cluster");
  });

  afterAll(async () => {
    await cluster?.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** `<image> mycelium <args>`, from outside the workspace. */
  const mycelium = (...args: string[]) => run(process.execPath, [entry, "mycelium", ...args], { cwd: scratch });

  test("holds the services and the CLI with production dependencies only, and nothing that leads back to the workspace", () => {
    const modules = path.join(app, "node_modules");
    for (const name of ["coordinator", "shard-router", "replicator", "node-agent", "client", "tls"]) {
      expect(fs.existsSync(path.join(modules, "@mycelium", name, "dist", "index.js"))).toBe(true);
      // Only what the package's "files" ship: no sources, no tests.
      expect(fs.existsSync(path.join(modules, "@mycelium", name, "src"))).toBe(false);
    }
    for (const dev of ["typescript", "jest", "@swc/core", "turbo", "ts-proto", "@bufbuild/buf", "fast-check", "@mycelium/testkit"]) {
      expect([dev, fs.existsSync(path.join(modules, dev))]).toEqual([dev, false]);
    }
    const leaving: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isSymbolicLink()) {
          if (!fs.realpathSync(full).startsWith(app + path.sep)) leaving.push(full);
        } else if (entry.isDirectory()) {
          walk(full);
        }
      }
    };
    walk(app);
    expect(leaving).toEqual([]);
  });

  test("the entry point names its choices and refuses an unknown one", async () => {
    const help = await run(process.execPath, [entry], { cwd: scratch });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/coordinator \| shard-router \| replicator \| node-agent/);
    const unknown = await run(process.execPath, [entry, "gateway"], { cwd: scratch });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown process "gateway"/);
    // A service started without its configuration stops with the configuration's own message (exit 2).
    const unconfigured = await run(process.execPath, [entry, "node-agent"], { cwd: scratch });
    expect(unconfigured.code).toBe(2);
    expect(unconfigured.stderr).toMatch(/node-agent: invalid configuration[\s\S]*MYCELIUM_TLS_CERT_PATH/);
  });

  test("a whole cluster runs from it through the entry point and answers the README's statements", async () => {
    cluster = new LocalCluster({
      dataDir,
      basePort: 0,
      env: fastTimings,
      readyTimeoutMs: 120_000,
      serviceCommand: { args: (role) => [entry, role], cwd: scratch },
    });
    await cluster.start();
    for (const handle of cluster.processes) expect(handle.child.spawnargs.slice(1)).toEqual([entry, handle.role]);

    const at = ["--data-dir", dataDir];
    const steps: Array<[string[], RegExp]> = [
      [["policy", "set", "users", "--shard-keys", "user_id", "--shards", "8", "--replication-factor", "0.5", ...at], /users/],
      [["sql", "-e", "CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL)", ...at], /CREATE|OK|ok/i],
      [["sql", "-e", "INSERT INTO users (user_id, name) VALUES (1, 'ada'), (2, 'grace')", ...at], /2/],
      [["explain", "-e", "SELECT * FROM users WHERE user_id IN (1, 2)", ...at], /shard/i],
    ];
    for (const [args, expected] of steps) {
      const result = await mycelium(...args);
      expect([args.join(" "), result.code, result.stderr]).toEqual([args.join(" "), 0, ""]);
      expect(result.stdout).toMatch(expected);
    }
    const select = await mycelium("sql", "-e", "SELECT * FROM users WHERE user_id = 1", "--json", ...at);
    expect(select.code).toBe(0);
    expect(JSON.parse(select.stdout)).toEqual(expect.objectContaining({ columns: ["user_id", "name"], rows: [[1, "ada"]] }));
    const nodes = await mycelium("nodes", ...at);
    expect(nodes.code).toBe(0);
    for (const node of cluster.info.nodes) expect(nodes.stdout).toContain(node.nodeId);
    const shards = await mycelium("shards", "users", ...at);
    expect(shards.code).toBe(0);
    expect(shards.stdout.trim().split("\n").length).toBeGreaterThanOrEqual(8);

    // The chart's `helm test` script, run from the application directory as the test pod runs it.
    const secretVolume = (role: string) => {
      const dir = path.join(scratch, `helm-test-${role}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(path.join(dataDir, "certs", `${role}-${role}.crt`), path.join(dir, "tls.crt"));
      fs.copyFileSync(path.join(dataDir, "certs", `${role}-${role}.key`), path.join(dir, "tls.key"));
      fs.copyFileSync(path.join(dataDir, "certs", "ca.crt"), path.join(dir, "ca.crt"));
      return dir;
    };
    const helmTest = () =>
      run(process.execPath, [path.join(repo, "deploy/helm/mycelium/files/helm-test.js")], {
        cwd: app,
        env: {
          TEST_COORDINATOR: `127.0.0.1:${cluster!.info.services.coordinator.port}`,
          TEST_ROUTER: `127.0.0.1:${cluster!.info.services["shard-router"].port}`,
          TEST_NETWORK_ID: cluster!.info.networkId,
          TEST_CLIENT_DIR: secretVolume("client"),
          TEST_ADMIN_DIR: secretVolume("admin"),
          TEST_CLIENT_NAME: "client",
          TEST_ENTRYPOINT: "bin/container-entrypoint.js",
        },
        timeoutMs: 120_000,
      });
    // Twice: `helm test` may run again on the same release.
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await helmTest();
      expect([result.code, result.stderr]).toEqual([0, ""]);
      expect(result.stdout).toMatch(/as the client answered 42/);
    }

    // SIGTERM reaches each service through the entry point, which runs it in-process: every one exits 0.
    await cluster.stop(20_000);
    expect(cluster.processes.map((p) => [p.name, p.child.exitCode])).toEqual(cluster.processes.map((p) => [p.name, 0]));
    cluster = undefined;
  });

  test("installs outside the workspace: npm install -g gives a working mycelium command", async () => {
    const prefix = path.join(scratch, "global");
    const install = await run("npm", ["install", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", app], { cwd: scratch, timeoutMs: 120_000 });
    expect([install.code, install.stderr]).toEqual([0, expect.any(String)]);
    const help = await run(path.join(prefix, "bin", "mycelium"), ["--help"], { cwd: scratch });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: mycelium/);
    const keygen = await run(path.join(prefix, "bin", "mycelium"), ["keygen"], { cwd: scratch });
    expect(JSON.parse(keygen.stdout)).toEqual(expect.objectContaining({ nodeId: expect.stringMatching(/^n[0-9a-f]{20}$/) }));
  });

  test("@mycelium/client deploys the same way and loads in an application outside the workspace", async () => {
    const client = path.join(scratch, "client");
    const built = spawnSync("bash", [path.join(repo, "deploy/image/build-app.sh"), client, "@mycelium/client"], { encoding: "utf8", timeout: 240_000 });
    expect([built.status, built.stderr]).toEqual([0, ""]);
    const application = path.join(scratch, "application");
    fs.mkdirSync(application);
    fs.writeFileSync(path.join(application, "package.json"), JSON.stringify({ name: "application", private: true }));
    const install = await run("npm", ["install", "--offline", "--no-audit", "--no-fund", client], { cwd: application, timeoutMs: 120_000 });
    expect(install.code).toBe(0);
    const loaded = await run(process.execPath, ["-e", "const m = require('@mycelium/client'); console.log(typeof m.MyceliumClient, typeof m.TransactionManager)"], { cwd: application });
    expect([loaded.code, loaded.stdout.trim(), loaded.stderr]).toEqual([0, "function function", ""]);
  });
});
