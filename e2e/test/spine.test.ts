/**
 * Issue 2's end-to-end path with real processes: `mycelium up` with three node-agents, a policy, a
 * table, 1,000 rows written and read back by key over mutual TLS, spread over the nodes, then UPDATE
 * and DELETE by key, and a clean stop on SIGTERM.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { MyceliumClient } from "@mycelium/client";
import { common, router } from "@mycelium/proto";
import { cliPath, fastTimings } from "@mycelium/testkit";

jest.setTimeout(180_000);

describe.each(["sqlite", "postgres"] as const)("mycelium up --backend %s", (backend) => {
  let dataDir: string;
  let up: ChildProcessWithoutNullStreams;
  let output = "";
  let client: MyceliumClient;
  let readyAfterMs = 0;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-spine-"));
    fs.chmodSync(dataDir, 0o755);
    const started = Date.now();
    up = spawn(process.execPath, [cliPath(), "up", "--data-dir", dataDir, "--base-port", "0", "--backend", backend], {
      env: { PATH: process.env.PATH ?? "", ...fastTimings },
    });
    up.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    up.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within 90 s:\n${output}`)), 90_000);
      const check = () => {
        if (/^ready/m.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      up.stdout.on("data", check);
      up.on("exit", (code) => reject(new Error(`mycelium up exited (${code}):\n${output}`)));
    });
    readyAfterMs = Date.now() - started;
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, "cluster.json"), "utf8"));
    client = new MyceliumClient({
      coordinatorAddress: `127.0.0.1:${info.services.coordinator.port}`,
      routerAddress: `127.0.0.1:${info.services["shard-router"].port}`,
      tls: {
        certPath: path.join(dataDir, "certs", "admin-admin.crt"),
        keyPath: path.join(dataDir, "certs", "admin-admin.key"),
        caPath: path.join(dataDir, "certs", "ca.crt"),
      },
      networkId: info.networkId,
    });
  });

  afterAll(async () => {
    client?.close();
    if (up && up.exitCode === null) {
      up.kill("SIGKILL");
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test("up prints where every service listens and a ready line", () => {
    expect(output).toMatch(/shard-router\s+shard-router\s+127\.0\.0\.1:\d+/);
    expect(output).toMatch(/coordinator\s+coordinator\s+127\.0\.0\.1:\d+/);
    expect(output).toMatch(/replicator\s+replicator\s+127\.0\.0\.1:\d+/);
    expect(output.match(/node-agent\s+/g)).toHaveLength(3);
    if (backend === "postgres") expect(output).toMatch(/postgres\s+postgres\s+127\.0\.0\.1:\d+/);
    expect(output).toMatch(/^ready in \d+\.\d s$/m);
    process.stdout.write(`mycelium up --backend ${backend} → ready in ${readyAfterMs} ms (wall clock, including process start)\n`);
  });

  test("three registered nodes: two validators and a miner", async () => {
    const { nodes } = await client.router.listNodes(router.ListNodesRequest.create({}));
    expect(nodes).toHaveLength(3);
    expect(nodes.filter((n) => n.nodeType === common.NodeType.NODE_TYPE_VALIDATOR)).toHaveLength(2);
    expect(nodes.filter((n) => n.nodeType === common.NodeType.NODE_TYPE_MINER)).toHaveLength(1);
    for (const node of nodes) expect(node.status).toBe(common.NodeStatus.NODE_STATUS_UP);
  });

  test("a table sharded by policy holds 1,000 rows spread over the nodes; every row reads back by key", async () => {
    const { shards } = await client.router.setPolicy(
      router.SetPolicyRequest.create({
        policy: common.TablePolicy.create({ table: "users", shardKeys: ["user_id"], shardFunction: common.ShardFunction.SHARD_FUNCTION_HASH, initialShardCount: 8, replicationFactor: 0.5 }),
      }),
    );
    expect(shards).toHaveLength(8);
    // ceil(0.5 × 3 nodes) = 2 copies of each shard.
    for (const shard of shards) expect(shard.replicaNodeIds).toHaveLength(2);

    await client.execute("CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance INTEGER NOT NULL)");
    // Single-row inserts (one shard each: one-phase commits) and multi-row inserts split over shards (2PC).
    for (let id = 1; id <= 100; id++) await client.execute("INSERT INTO users (user_id, name, balance) VALUES (?, ?, ?)", [id, `user-${id}`, id * 10]);
    for (let start = 101; start <= 1000; start += 100) {
      const ids = Array.from({ length: 100 }, (_, i) => start + i);
      const result = await client.execute(`INSERT INTO users (user_id, name, balance) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`, ids.flatMap((id) => [id, `user-${id}`, id * 10]));
      expect(result.rowsAffected).toBe(100);
    }
    for (let id = 1; id <= 1000; id++) {
      const result = await client.execute("SELECT user_id, name, balance FROM users WHERE user_id = ?", [id]);
      expect(result.rows).toEqual([[id, `user-${id}`, id * 10]]);
    }

    // Where each row lives, by its shard's primary: the data is spread over the nodes.
    const primaryRows = new Map<string, number>();
    for (let id = 1; id <= 1000; id++) {
      const primary = (await client.explain("SELECT * FROM users WHERE user_id = ?", [id])).targets[0]!.primaryNodeId;
      primaryRows.set(primary, (primaryRows.get(primary) ?? 0) + 1);
    }
    expect([...primaryRows.values()].filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    process.stdout.write(`rows per primary node on ${backend}: ${JSON.stringify(Object.fromEntries(primaryRows))}\n`);

    if (backend === "sqlite") {
      // And on disk: each primary's shard files hold exactly the rows routed to it.
      const info = JSON.parse(fs.readFileSync(path.join(dataDir, "cluster.json"), "utf8")) as { nodes: Array<{ name: string; nodeId: string }> };
      for (const node of info.nodes) {
        const shardDir = path.join(dataDir, "nodes", node.name, "shards");
        let total = 0;
        for (const shard of shards.filter((s) => s.primaryNodeId === node.nodeId)) {
          const db = new Database(path.join(shardDir, `${shard.shardId}.db`), { readonly: true, fileMustExist: true });
          try {
            total += (db.prepare("SELECT count(*) AS n FROM users").get() as { n: number }).n;
          } finally {
            db.close();
          }
        }
        expect(total).toBe(primaryRows.get(node.nodeId) ?? 0);
      }
    }
  });

  test("UPDATE and DELETE by key change exactly the row addressed", async () => {
    const updated = await client.execute("UPDATE users SET balance = balance + 5 WHERE user_id = ?", [500]);
    expect(updated.rowsAffected).toBe(1);
    expect((await client.execute("SELECT balance FROM users WHERE user_id = 500")).rows).toEqual([[5005]]);
    expect((await client.execute("SELECT balance FROM users WHERE user_id = 501")).rows).toEqual([[5010]]);

    const deleted = await client.execute("DELETE FROM users WHERE user_id = ?", [777]);
    expect(deleted.rowsAffected).toBe(1);
    expect((await client.execute("SELECT * FROM users WHERE user_id = 777")).rows).toEqual([]);
    expect((await client.execute("SELECT user_id FROM users WHERE user_id = 778")).rows).toEqual([[778]]);
  });

  test("bad SQL is INVALID_ARGUMENT with the parser's message; a table without a policy is a clear error", async () => {
    await expect(client.execute("SELEC * FROM users")).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/syntax error at or near "SELEC"/) });
    await expect(client.execute("SELECT * FROM ghosts WHERE id = 1")).rejects.toMatchObject({
      code: "NOT_FOUND",
      reason: "NO_POLICY",
      message: expect.stringContaining("table ghosts has no sharding policy"),
    });
    await expect(client.execute("CREATE TABLE ghosts (id INTEGER PRIMARY KEY)")).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "NO_POLICY",
      message: expect.stringContaining("mycelium policy set ghosts"),
    });
    await expect(client.execute("SELECT 1; SELECT 2")).rejects.toMatchObject({ code: "INVALID_ARGUMENT", reason: "MULTIPLE_STATEMENTS" });
  });

  test("mycelium up stops every process cleanly on SIGTERM", async () => {
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, "cluster.json"), "utf8"));
    const exited = new Promise<number | null>((resolve) => up.on("exit", (code) => resolve(code)));
    up.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toMatch(/stopped/);
    // Nothing listens any more on the services' ports.
    const net = await import("node:net");
    const ports = [info.services.coordinator.port, info.services["shard-router"].port, ...info.nodes.map((n: { port: number }) => n.port)];
    for (const port of ports) {
      const refused = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve(false);
        });
        socket.once("error", () => resolve(true));
      });
      expect(refused).toBe(true);
    }
  });
});
