import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import { MyceliumClient, rowObjects } from "@mycelium/client";
import { common, router } from "@mycelium/proto";
import { LocalCluster } from "../local-cluster/local-cluster";
import { renderTable } from "../output/format";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("start a local cluster in a temporary directory, walk through sharding and a distributed transaction, and stop")
    .option("--data-dir <dir>", "use this directory instead of a temporary one (kept afterwards)")
    .option("--keep", "leave the cluster running after the demo (Ctrl-C stops it)")
    .action(async (options: { dataDir?: string; keep?: boolean }) => {
      const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-demo-"));
      const say = (line: string) => process.stdout.write(line + "\n");
      const cluster = new LocalCluster({ dataDir, basePort: 0, onProgress: (line) => say(`  ${line}`) });
      say(`1. Starting a cluster (2 validators, 1 miner, SQLite, mutual TLS) in ${dataDir}`);
      try {
        await cluster.start();
        await walkthrough(cluster, say);
        if (options.keep) {
          say(`\nThe cluster keeps running: mycelium sql --data-dir ${dataDir}    (Ctrl-C stops it)`);
          await new Promise<void>((resolve) => {
            process.once("SIGINT", resolve);
            process.once("SIGTERM", resolve);
          });
        }
      } finally {
        say("Stopping the cluster");
        await cluster.stop();
        if (!options.dataDir && !options.keep) fs.rmSync(dataDir, { recursive: true, force: true });
      }
      say("Done.");
    });
}

async function walkthrough(cluster: LocalCluster, say: (line: string) => void): Promise<void> {
  const { info, layout } = cluster;
  const admin = new MyceliumClient({
    coordinatorAddress: `${info.host}:${info.services.coordinator.port}`,
    routerAddress: `${info.host}:${info.services["shard-router"].port}`,
    tls: layout.certificate("admin", "admin"),
    networkId: info.networkId,
  });
  try {
    say("\n2. A policy: table users, sharded by user_id over 8 hash shards, each on half the nodes");
    await admin.router.setPolicy(
      router.SetPolicyRequest.create({
        policy: common.TablePolicy.create({ table: "users", shardKeys: ["user_id"], replicationFactor: 0.5, minValidatorCopies: 1, initialShardCount: 8 }),
      }),
    );
    await admin.router.setPolicy(
      router.SetPolicyRequest.create({
        policy: common.TablePolicy.create({ table: "accounts", shardKeys: ["account_id"], replicationFactor: 0.5, minValidatorCopies: 1, initialShardCount: 4 }),
      }),
    );
    await admin.execute("CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL DEFAULT 0)");
    await admin.execute("CREATE TABLE accounts (account_id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))");
    say("   CREATE TABLE went to every replica of every shard");

    say("\n3. Insert 1,000 users, 100 per statement: each multi-row INSERT is split per shard and committed atomically (2PC)");
    const started = Date.now();
    for (let batch = 0; batch < 10; batch++) {
      const ids = Array.from({ length: 100 }, (_, i) => batch * 100 + i + 1);
      await admin.execute(`INSERT INTO users (user_id, name, score) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`, ids.flatMap((id) => [id, `user-${id}`, id % 97]));
    }
    say(`   done in ${Date.now() - started} ms`);
    const { shards } = await admin.router.listShards(router.ListShardsRequest.create({ table: "users" }));
    const rows = shards.map((shard) => [shard.shardId, shard.primaryNodeId, shard.replicaNodeIds.length]);
    say(renderTable(["shard", "primary", "copies"], rows).split("\n").map((l) => `   ${l}`).join("\n"));

    say("\n4. Point reads are routed to one shard");
    const plan = await admin.explain("SELECT * FROM users WHERE user_id = 42");
    say(`   ${plan.notes.join("; ")} → ${plan.targets[0]?.shard?.shardId} on ${plan.targets[0]?.primaryNodeId}`);
    const one = await admin.execute("SELECT * FROM users WHERE user_id = ?", [42]);
    say(renderTable(one.columns, one.rows).split("\n").map((l) => `   ${l}`).join("\n"));
    const some = await admin.execute("SELECT user_id, name FROM users WHERE user_id IN (7, 300, 999)");
    say(`   IN (7, 300, 999) touched ${(await admin.explain("SELECT user_id, name FROM users WHERE user_id IN (7, 300, 999)")).targets.length} shard(s): ${rowObjects(some).map((r) => r.name).join(", ")}`);

    say("\n5. A transfer between accounts on different shards, atomically, while watching the event stream");
    await admin.execute("INSERT INTO accounts (account_id, balance) VALUES (1, 100), (2, 100)");
    const controller = new AbortController();
    const events: string[] = [];
    const watching = (async () => {
      try {
        for await (const event of admin.subscribe({ signal: controller.signal })) {
          events.push(event.type === "state_changed" ? `${event.oldState} → ${event.newState}` : `completed success=${event.success} in ${event.durationMs} ms`);
        }
      } catch {
        // The stream ends when the demo aborts it.
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await admin.transaction(async (tx) => {
      await tx.execute("UPDATE accounts SET balance = balance - 30 WHERE account_id = 1");
      await tx.execute("UPDATE accounts SET balance = balance + 30 WHERE account_id = 2");
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await watching;
    say(`   events: ${events.join(", ")}`);
    const balances = await admin.execute("SELECT account_id, balance FROM accounts WHERE account_id IN (1, 2)");
    say(renderTable(balances.columns, balances.rows).split("\n").map((l) => `   ${l}`).join("\n"));

    say("\n6. A transfer that would overdraw fails as a whole: the CHECK fails on one shard, nothing is applied on the other");
    try {
      await admin.executeTransaction([
        { sql: "UPDATE accounts SET balance = balance + 500 WHERE account_id = 2" },
        { sql: "UPDATE accounts SET balance = balance - 500 WHERE account_id = 1" },
      ]);
    } catch (error) {
      say(`   refused: ${(error as Error).message}`);
    }
    const after = await admin.execute("SELECT account_id, balance FROM accounts WHERE account_id IN (1, 2)");
    say(`   balances unchanged: ${rowObjects(after).map((r) => `${r.account_id}=${r.balance}`).join(", ")}`);
  } finally {
    admin.close();
  }
}
