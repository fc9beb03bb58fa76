/**
 * Issue 15: `mycelium traces tail` shows a cross-shard transfer as one waterfall — spans of the
 * coordinator, the router and both participants — within a second of the commit, whether it follows
 * the trace file `mycelium up --traces` writes or receives the services' OTLP/HTTP exports; and
 * `mycelium traces show` finds the same transaction by its transaction id or its trace id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "@mycelium/cli";
import type { MyceliumClient } from "@mycelium/client";
import { common, router } from "@mycelium/proto";
import { cliPath, eventually, runCli, TestCluster } from "@mycelium/testkit";

jest.setTimeout(180_000);

interface Tail {
  child: ChildProcess;
  /** Each printed transaction with the time its first line arrived. */
  blocks: Array<{ text: string; atMs: number }>;
  stderr: string;
}

function startTail(args: string[]): Tail {
  const child = spawn(process.execPath, [cliPath(), "traces", "tail", "--no-color", ...args], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] });
  const tail: Tail = { child, blocks: [], stderr: "" };
  let pending = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    // Transactions are separated by an empty line.
    let end: number;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      tail.blocks.push({ text: pending.slice(0, end), atMs: Date.now() });
      pending = pending.slice(end + 2);
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (tail.stderr += chunk.toString()));
  return tail;
}

async function stopTail(tail: Tail | undefined): Promise<void> {
  if (!tail || tail.child.exitCode !== null) return;
  const exited = new Promise((resolve) => tail.child.once("exit", resolve));
  tail.child.kill("SIGINT");
  await exited;
}

describe("mycelium traces", () => {
  let cluster: TestCluster;
  let admin: MyceliumClient;
  let fileTail: Tail;
  let otlpTail: Tail;
  let pair: { a: number; b: number; aNode: string; bNode: string };

  beforeAll(async () => {
    // The OTLP receiver listens before the services start, as an operator would run it.
    const otlpPort = await freePort("127.0.0.1");
    const dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-traces-")), "cluster");
    // Names nodes (v1, m1) from the data directory once the cluster has written it.
    otlpTail = startTail(["--otlp", `127.0.0.1:${otlpPort}`, "--data-dir", dataDir]);
    await eventually(() => expect(otlpTail.stderr).toContain("receiving OTLP at"), { timeoutMs: 20_000 });
    cluster = await TestCluster.start({
      dataDir,
      validators: 2,
      miners: 1,
      traces: true,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`, OTEL_BSP_SCHEDULE_DELAY: "100" },
    });
    admin = cluster.client("admin", { deadlineMs: 15_000 });
    await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "accounts", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 0.5 }) }));
    await admin.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    await admin.execute(`INSERT INTO accounts (id, balance) VALUES ${ids.map(() => "(?, 100)").join(", ")}`, ids);
    const primaries = new Map<number, string>();
    for (const id of ids) primaries.set(id, (await admin.explain("SELECT * FROM accounts WHERE id = ?", [id])).targets[0]!.primaryNodeId);
    const b = ids.find((id) => primaries.get(id) !== primaries.get(1))!;
    const name = (nodeId: string) => cluster.info.nodes.find((n) => n.nodeId === nodeId)!.name;
    pair = { a: 1, b, aNode: name(primaries.get(1)!), bNode: name(primaries.get(b)!) };
    fileTail = startTail(["--data-dir", cluster.dataDir]);
    await eventually(() => expect(fileTail.stderr).toContain("following"), { timeoutMs: 20_000 });
  });

  afterAll(async () => {
    await stopTail(fileTail);
    await stopTail(otlpTail);
    await cluster?.stop();
    if (cluster) fs.rmSync(path.dirname(cluster.dataDir), { recursive: true, force: true });
  });

  function expectOneWaterfall(text: string, txId: string): void {
    const lines = text.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^tx ${txId} · committed \\(two-phase\\) · [\\d.]+ m?s · tables accounts`));
    // One trace, both participants named with their nodes.
    expect(lines[1]).toMatch(/^ {2}trace [0-9a-f]{32}$/);
    expect(lines[2]).toMatch(new RegExp(`participants .*accounts-\\d{4}@${pair.aNode}`));
    expect(lines[2]).toMatch(new RegExp(`participants .*accounts-\\d{4}@${pair.bNode}`));
    const who = lines.slice(3).map((line) => line.trim().split(/\s{2,}/)[0]);
    expect(who).toEqual(expect.arrayContaining(["coordinator", "shard-router", `node-agent ${pair.aNode}`, `node-agent ${pair.bNode}`]));
    expect(text).toMatch(/coordinator +TransactionService\/ExecuteTransaction/);
    expect(text).toMatch(/coordinator +route accounts/);
    for (const phase of ["2pc.prepare", "2pc.decide", "2pc.commit"]) expect(text).toContain(phase);
    expect(text).toMatch(new RegExp(`node-agent ${pair.aNode} +NodeAgentService/Prepare accounts-`));
    expect(text).toMatch(new RegExp(`node-agent ${pair.bNode} +NodeAgentService/Commit accounts-`));
  }

  test("a cross-shard transfer is one waterfall within a second of the commit, from the trace file and from OTLP", async () => {
    expect(pair.aNode).not.toBe(pair.bNode);
    const { txId } = await admin.executeTransaction([
      { sql: "UPDATE accounts SET balance = balance - 5 WHERE id = ?", params: [pair.a] },
      { sql: "UPDATE accounts SET balance = balance + 5 WHERE id = ?", params: [pair.b] },
    ]);
    const committedAt = Date.now();
    for (const [source, tail] of [["file", fileTail], ["otlp", otlpTail]] as const) {
      const block = await eventually(() => {
        const found = tail.blocks.find((b) => b.text.startsWith(`tx ${txId}`));
        if (!found) throw new Error(`${source}: no waterfall for ${txId} yet\n${tail.stderr}`);
        return found;
      }, { timeoutMs: 10_000, intervalMs: 20 });
      process.stdout.write(`traces tail (${source}) printed the transfer ${block.atMs - committedAt} ms after the commit:\n${block.text}\n`);
      expect(block.atMs - committedAt).toBeLessThan(1000);
      expectOneWaterfall(block.text, txId);
    }
  });

  test("an interactive transaction's requests are one waterfall; filters choose what is printed", async () => {
    const slowTail = startTail(["--data-dir", cluster.dataDir, "--slow", "60000"]);
    const usersTail = startTail(["--data-dir", cluster.dataDir, "--table", "users"]);
    try {
      await eventually(() => expect(slowTail.stderr + usersTail.stderr).toMatch(/following[\s\S]*following/), { timeoutMs: 20_000 });
      const tx = await admin.begin();
      await tx.execute("UPDATE accounts SET balance = balance - 1 WHERE id = ?", [pair.a]);
      await tx.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", [pair.b]);
      await tx.commit();
      const block = await eventually(() => {
        const found = fileTail.blocks.find((b) => b.text.startsWith(`tx ${tx.id}`));
        if (!found) throw new Error("not printed yet");
        return found;
      }, { timeoutMs: 10_000, intervalMs: 20 });
      // Begin, two statements and the commit: four traces, one transaction.
      expect(block.text.split("\n")[1]).toMatch(/^ {2}traces ([0-9a-f]{32}, ){3}[0-9a-f]{32}$/);
      for (const request of ["Begin", "Execute", "Commit"]) expect(block.text).toContain(`TransactionService/${request}`);
      // Another transaction reaches the unfiltered tails after this one: the filtered ones had their chance.
      const { txId: marker } = await admin.executeTransaction([{ sql: "UPDATE accounts SET balance = balance WHERE id = ?", params: [pair.a] }]);
      await eventually(() => expect(fileTail.blocks.some((b) => b.text.startsWith(`tx ${marker}`))).toBe(true), { timeoutMs: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(slowTail.blocks).toEqual([]);
      expect(usersTail.blocks).toEqual([]);
    } finally {
      await stopTail(slowTail);
      await stopTail(usersTail);
    }
  });

  test("traces show finds the transfer by transaction id or trace id, and says so when it does not", async () => {
    const { txId } = await admin.executeTransaction([
      { sql: "UPDATE accounts SET balance = balance - 2 WHERE id = ?", params: [pair.a] },
      { sql: "UPDATE accounts SET balance = balance + 2 WHERE id = ?", params: [pair.b] },
    ]);
    const block = await eventually(() => {
      const found = fileTail.blocks.find((b) => b.text.startsWith(`tx ${txId}`));
      if (!found) throw new Error("not printed yet");
      return found;
    }, { timeoutMs: 10_000 });
    const traceId = /trace ([0-9a-f]{32})/.exec(block.text)![1]!;
    const byTx = await runCli(["traces", "show", txId, "--data-dir", cluster.dataDir, "--no-color"]);
    expect(byTx.code).toBe(0);
    expectOneWaterfall(byTx.stdout, txId);
    const byTrace = await runCli(["traces", "show", traceId.slice(0, 12), "--data-dir", cluster.dataDir, "--no-color"]);
    expect(byTrace.code).toBe(0);
    expect(byTrace.stdout.split("\n")[0]).toBe(byTx.stdout.split("\n")[0]);
    const missing = await runCli(["traces", "show", "ffffffffffff", "--data-dir", cluster.dataDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no transaction or trace ffffffffffff");
  });
});
