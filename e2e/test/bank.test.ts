/**
 * The bank (issue 4): 100 accounts over all shards, 8 clients making random transfers for 30 s while a
 * node-agent and then the coordinator are killed (SIGKILL) and restarted. Each transfer debits, credits
 * and records itself in a `transfers` table in one distributed transaction; a CHECK keeps balances ≥ 0.
 * Every shard has a synchronous secondary (as money needs: a failover then loses no committed or
 * prepared transaction), and the 2 s outage of a validator is past the 3 s heartbeat timeout once its
 * restart is counted, so primaries fail over mid-run.
 *
 * Checked: every audit (a serializable read of all balances in one transaction) sees the same total;
 * no balance is ever negative; afterwards every acknowledged transfer is in `transfers`, and each
 * account's balance equals its opening balance plus the transfers recorded for it — nothing half-applied.
 */
import { randomUUID } from "node:crypto";
import { common, nodeagent, replicator, router } from "@mycelium/proto";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { eventually, TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";

jest.setTimeout(300_000);

const accounts = 100;
const opening = 1000;
const clients = 8;
const runMs = 30_000;
const synchronous = { replicationSync: common.ReplicationSync.REPLICATION_SYNC_SYNC, syncReplicas: 1 };

/** sqlite and postgres: every node on one backend; mixed: validators on PostgreSQL, the miner on SQLite. */
describe.each(["sqlite", "postgres", "mixed"] as const)("on %s nodes", (backend) => {
  let cluster: TestCluster;
  let admin: MyceliumClient;

  beforeAll(async () => {
    cluster = await TestCluster.start({ validators: 2, miners: 1, backend });
    admin = cluster.client("admin", { deadlineMs: 15_000 });
    await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "accounts", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 0.5, ...synchronous }) }));
    await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "transfers", shardKeys: ["transfer_id"], initialShardCount: 4, replicationFactor: 0.5, ...synchronous }) }));
    await admin.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))");
    await admin.execute("CREATE TABLE transfers (transfer_id TEXT PRIMARY KEY, from_id INTEGER NOT NULL, to_id INTEGER NOT NULL, amount INTEGER NOT NULL)");
    const ids = Array.from({ length: accounts }, (_, i) => i + 1);
    await admin.execute(`INSERT INTO accounts (id, balance) VALUES ${ids.map(() => `(?, ${opening})`).join(", ")}`, ids);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  test("transfers under crashes keep the total, never go negative, and lose nothing acknowledged", async () => {
    const acknowledged = new Set<string>();
    const stats = { attempted: 0, acknowledged: 0, failed: 0, audits: 0, auditFailures: 0, errors: new Map<string, number>() };
    const auditTotals: number[] = [];
    const negative: string[] = [];
    const deadline = Date.now() + runMs;
    const note = (error: unknown) => {
      const key = `${(error as { code?: string }).code ?? "?"}/${(error as { reason?: string }).reason ?? ""}`;
      stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
      if ((stats.errors.get(key) ?? 0) <= 3) process.stdout.write(`sample +${Math.round((Date.now() - deadline + runMs) / 1000)}s ${key}: ${(error as Error).message.slice(0, 240)}\n`);
    };

    const transferLoop = async (worker: number) => {
      const client = cluster.client("client", { deadlineMs: 10_000 });
      while (Date.now() < deadline) {
        const from = 1 + Math.floor(Math.random() * accounts);
        let to = 1 + Math.floor(Math.random() * accounts);
        if (to === from) to = (to % accounts) + 1;
        const amount = 1 + Math.floor(Math.random() * 50);
        const id = `${worker}-${randomUUID()}`;
        stats.attempted++;
        try {
          await client.executeTransaction([
            { sql: "UPDATE accounts SET balance = balance - ? WHERE id = ?", params: [amount, from] },
            { sql: "UPDATE accounts SET balance = balance + ? WHERE id = ?", params: [amount, to] },
            { sql: "INSERT INTO transfers (transfer_id, from_id, to_id, amount) VALUES (?, ?, ?, ?)", params: [id, from, to, amount] },
          ]);
          acknowledged.add(id);
          stats.acknowledged++;
        } catch (error) {
          stats.failed++;
          note(error);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };

    const auditLoop = async () => {
      const client = cluster.client("client", { deadlineMs: 10_000 });
      while (Date.now() < deadline) {
        try {
          const rows = await client.transaction(async (tx) => (await tx.execute("SELECT id, balance FROM accounts")).rows);
          stats.audits++;
          expect(rows).toHaveLength(accounts);
          auditTotals.push(rows.reduce((sum, row) => sum + (row[1] as number), 0));
          for (const row of rows) if ((row[1] as number) < 0) negative.push(`account ${row[0]}: ${row[1]}`);
        } catch (error) {
          stats.auditFailures++;
          note(error);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };

    const chaos = async () => {
      await new Promise((resolve) => setTimeout(resolve, 8_000));
      const victim = cluster.info.nodes.filter((n) => n.kind === "validator")[Math.floor(Math.random() * 2)]!.name;
      await cluster.kill(victim, "SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await cluster.restart(victim);
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      await cluster.kill("coordinator", "SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await cluster.restart("coordinator");
    };

    await Promise.all([...Array.from({ length: clients }, (_, i) => transferLoop(i)), auditLoop(), chaos()]);

    // Let in-doubt transactions resolve: nothing prepared anywhere, nothing undecided.
    const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: cluster.cluster.layout.certificate("admin", "admin"), networkId: cluster.info.networkId, protocolVersion: "1.0.0" });
    try {
      await eventually(async () => {
        for (const node of cluster.info.nodes) {
          const { transactions } = await pool.service(nodeagent.NodeAgentServiceService, cluster.nodeAddress(node.name)).listPrepared(nodeagent.ListPreparedRequest.create({}), { deadlineMs: 5000 });
          expect(transactions).toEqual([]);
        }
      }, { timeoutMs: 30_000, intervalMs: 500 });
      // Synchronous replication: no failover left a returning primary's transaction in the journal.
      const { conflicts } = await pool.service(replicator.ReplicatorServiceService, cluster.address("replicator")).listConflicts(replicator.ListConflictsRequest.create({}), { deadlineMs: 5000 });
      expect(conflicts).toEqual([]);
    } finally {
      pool.close();
    }

    const final = (await admin.execute("SELECT id, balance FROM accounts")).rows as Array<[number, number]>;
    const transfers = (await admin.execute("SELECT transfer_id, from_id, to_id, amount FROM transfers")).rows as Array<[string, number, number, number]>;
    const expected = new Map<number, number>(Array.from({ length: accounts }, (_, i) => [i + 1, opening]));
    for (const [, from, to, amount] of transfers) {
      expected.set(from, expected.get(from)! - amount);
      expected.set(to, expected.get(to)! + amount);
    }
    const recorded = new Set(transfers.map((t) => t[0]));
    const lost = [...acknowledged].filter((id) => !recorded.has(id));

    process.stdout.write(
      `bank on ${backend}: ${stats.attempted} attempted, ${stats.acknowledged} acknowledged, ${stats.failed} failed, ${transfers.length} committed; ` +
        `${stats.audits} audits (${stats.auditFailures} failed); errors ${JSON.stringify(Object.fromEntries(stats.errors))}\n`,
    );

    expect(stats.acknowledged).toBeGreaterThan(100);
    expect(stats.audits).toBeGreaterThan(5);
    expect(new Set(auditTotals)).toEqual(new Set([accounts * opening]));
    expect(negative).toEqual([]);
    expect(lost).toEqual([]);
    expect(final.reduce((sum, [, balance]) => sum + balance, 0)).toBe(accounts * opening);
    expect(new Map(final)).toEqual(expected);
  });
});
