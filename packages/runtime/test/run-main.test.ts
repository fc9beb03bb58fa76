/**
 * runMain and silenceIpServerNameWarning in real child processes (exit codes, signals and process-wide
 * warnings cannot be observed in the Jest process). The children load the TypeScript sources through
 * the same swc hook the db and topology tests use, so no build is needed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, loadConfig } from "@mycelium/config";
import { silenceIpServerNameWarning } from "@mycelium/runtime";

const registerTs = path.join(__dirname, "../../db/test/support/register-ts.js");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-runtime-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The smallest valid coordinator environment (file checks only need the files to exist). */
function coordinatorEnv(): Record<string, string> {
  for (const file of ["node.crt", "node.key", "ca.crt"]) fs.writeFileSync(path.join(dir, file), "PEM\n");
  return {
    MYCELIUM_TLS_CERT_PATH: path.join(dir, "node.crt"),
    MYCELIUM_TLS_KEY_PATH: path.join(dir, "node.key"),
    MYCELIUM_TLS_CA_PATH: path.join(dir, "ca.crt"),
    MYCELIUM_ROUTER_ADDRESS: "127.0.0.1:7001",
    MYCELIUM_DATA_DIR: path.join(dir, "data"),
  };
}

interface Child {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Resolves when stdout has shown `text`. */
  waitFor(text: string): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Children print STARTED from setImmediate: runMain installs its signal handlers when start() has
 * resolved, a moment after start() itself returns.
 */
function run(script: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, ["-r", registerTs, "-e", script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const watchers: Array<{ text: string; resolve: () => void }> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const w of watchers.filter((w) => stdout.includes(w.text))) w.resolve();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  // A bound so a broken child cannot hang the suite.
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    exited,
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stdout.includes(text)) return resolve();
        watchers.push({ text, resolve });
        void exited.then((r) => reject(new Error(`child exited (${r.code}) before printing ${text}:\n${r.stderr}`)));
      }),
    kill: (signal) => child.kill(signal),
  };
}

const runtime = JSON.stringify("@mycelium/runtime");

describe("runMain", () => {
  it("exits with code 2 and the ConfigError text when the configuration is invalid, without starting", async () => {
    const env = { ...coordinatorEnv(), MYCELIUM_CONNECTION_LIMIT: "lots", MYCELIUM_NETWORK_ID: "Bad Network!" };
    let expected = "";
    try {
      loadConfig(env, { service: "coordinator" });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      expected = error.message;
    }
    expect(expected).toContain("MYCELIUM_CONNECTION_LIMIT");
    expect(expected).toContain("MYCELIUM_NETWORK_ID");

    const result = await run(
      `require(${runtime}).runMain("coordinator", async () => { console.log("STARTED"); return { stop: async () => {} }; });`,
      env,
    ).exited;
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`coordinator: invalid configuration\n${expected}\n`);
    expect(result.stdout).not.toContain("STARTED");
  });

  it("names an unknown MYCELIUM_ variable and exits with 2", async () => {
    const result = await run(`require(${runtime}).runMain("coordinator", async () => ({ stop: async () => {} }));`, {
      ...coordinatorEnv(),
      MYCELIUM_CONECTION_LIMIT: "10",
    }).exited;
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("MYCELIUM_CONECTION_LIMIT");
  });

  it("starts with a valid configuration, stops on SIGTERM and exits 0", async () => {
    const child = run(
      `require(${runtime}).runMain("coordinator", async (config) => {
         const keepAlive = setInterval(() => {}, 1000);
         setImmediate(() => console.log("STARTED " + config.network.networkId));
         return { stop: async () => { clearInterval(keepAlive); console.log("STOPPED"); } };
       });`,
      coordinatorEnv(),
    );
    await child.waitFor("STARTED");
    child.kill("SIGTERM");
    const result = await child.exited;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/STARTED \S+\nSTOPPED\n/);
  });

  it("a second signal while stopping exits at once with 1", async () => {
    const child = run(
      `require(${runtime}).runMain("coordinator", async () => {
         setInterval(() => {}, 1000);
         setImmediate(() => console.log("STARTED"));
         return { stop: () => { console.log("STOPPING"); return new Promise(() => {}); } };
       });`,
      coordinatorEnv(),
    );
    await child.waitFor("STARTED");
    child.kill("SIGTERM");
    await child.waitFor("STOPPING");
    child.kill("SIGINT");
    const result = await child.exited;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("coordinator: SIGINT again, exiting now");
  });

  it("exits 1 naming the error when start fails", async () => {
    const result = await run(
      `require(${runtime}).runMain("coordinator", async () => { throw new Error("cannot bind 7000"); });`,
      coordinatorEnv(),
    ).exited;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("coordinator: failed to start: Error: cannot bind 7000");
  });

  it("exits 1 when stop fails", async () => {
    const child = run(
      `require(${runtime}).runMain("coordinator", async () => {
         setInterval(() => {}, 1000);
         setImmediate(() => console.log("STARTED"));
         return { stop: async () => { throw new Error("flush failed"); } };
       });`,
      coordinatorEnv(),
    );
    await child.waitFor("STARTED");
    child.kill("SIGTERM");
    const result = await child.exited;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("coordinator: error while stopping: Error: flush failed");
  });
});

describe("silenceIpServerNameWarning", () => {
  // A real TLS dial with an IP literal as server name: Node warns DEP0123 (once per process).
  const script = (silence: boolean) => `
    ${silence ? `require(${runtime}).silenceIpServerNameWarning();` : ""}
    process.on("warning", (w) => console.log("WARNING " + (w.code || w.name)));
    const socket = require("node:tls").connect({ host: "127.0.0.1", port: 1, servername: "127.0.0.1" });
    socket.on("error", () => {});
    process.emitWarning("something else", { code: "MYC_OTHER" });
    process.emitWarning("a plain one");
    setTimeout(() => console.log("DONE"), 50);`;

  it("without it, Node warns DEP0123 (the test can see the warning it silences)", async () => {
    const result = await run(script(false), {}).exited;
    expect(result.stdout).toContain("WARNING DEP0123");
  });

  it("drops DEP0123 only; every other warning still arrives", async () => {
    const result = await run(script(true), {}).exited;
    expect({ code: result.code, lines: result.stdout.trimEnd().split("\n").sort(), stderr: result.stderr }).toEqual({
      code: 0,
      lines: ["DONE", "WARNING MYC_OTHER", "WARNING Warning"],
      stderr: expect.not.stringContaining("DEP0123"),
    });
  });

  it("recognises the code in both emitWarning call forms and passes other calls through unchanged", () => {
    const original = process.emitWarning;
    const seen: unknown[][] = [];
    process.emitWarning = ((...args: unknown[]) => void seen.push(args)) as typeof process.emitWarning;
    try {
      silenceIpServerNameWarning();
      process.emitWarning("ip servername", "DeprecationWarning", "DEP0123");
      process.emitWarning("ip servername", { type: "DeprecationWarning", code: "DEP0123" });
      process.emitWarning("other deprecation", "DeprecationWarning", "DEP0005");
      process.emitWarning("other, options form", { type: "DeprecationWarning", code: "DEP0005" });
      process.emitWarning("plain");
      expect(seen).toEqual([
        ["other deprecation", "DeprecationWarning", "DEP0005"],
        ["other, options form", { type: "DeprecationWarning", code: "DEP0005" }],
        ["plain"],
      ]);
    } finally {
      process.emitWarning = original;
    }
  });
});
