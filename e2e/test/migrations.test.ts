/**
 * Schema migrations over real processes (issue 5, item 4). `mycelium migrate --dir` applies numbered
 * files to every shard's primary, and the secondaries get the DDL through the change log; a node-agent
 * killed in the middle of a migration (fault point node.before-apply-schema) leaves it partially applied:
 * `migrate status` names the copies behind, the router refuses that node's shards (UNAVAILABLE,
 * SCHEMA_VERSION, naming shard, node and versions) while the other shards serve the new schema, and
 * running migrate again finishes the work without re-running what is done.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { common, router } from "@mycelium/proto";
import { eventually, runCli, TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";

jest.setTimeout(300_000);

describe.each(["sqlite", "postgres"] as const)("on %s nodes", (backend) => {
  let cluster: TestCluster;
  let admin: MyceliumClient;
  let dir: string;
  /** For each shard of users: its primary's node name, and an id stored there. */
  let shards: Array<{ shardId: string; primary: string; nodeId: string; id: number }>;

  const cli = (...args: string[]) => runCli([...args, "--data-dir", cluster.dataDir], { timeoutMs: 120_000 });
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const nameOf = (nodeId: string) => cluster.info.nodes.find((n) => n.nodeId === nodeId)!.name;

  beforeAll(async () => {
    cluster = await TestCluster.start({ validators: 3, miners: 1, backend });
    admin = cluster.client("admin", { deadlineMs: 20_000 });
    dir = path.join(cluster.dataDir, "migrations");
    fs.mkdirSync(dir);
    // Every node holds a copy of every shard (4 × 8 = 32 copies); migrations run on the 8 primaries.
    await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "users", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 1 }) }));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  test("001 creates the table on every copy; a file for a table without a policy is refused first", async () => {
    write("001_create_users.sql", "-- the first table\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nCREATE INDEX users_name ON users (name);\n");
    write("002_create_orders.sql", "CREATE TABLE orders (id INTEGER PRIMARY KEY)");
    const refused = await cli("migrate", "--dir", dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FAILED_PRECONDITION \(NO_POLICY\): migrations use tables that have no sharding policy: orders \(002_create_orders\)/);
    expect(refused.stderr).toMatch(/Nothing was applied/);
    fs.rmSync(path.join(dir, "002_create_orders.sql"));

    const applied = await cli("migrate", "--dir", dir);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/001_create_users\s+\| applied\s+\| users v0→v1\s+\| \d+\/32/);
    expect(applied.stdout).toMatch(/8 shard copies migrated, 0 already had it/);
    // The secondaries follow through the change log and report the new version.
    await eventually(async () => expect((await cli("migrate", "status", "--dir", dir)).stdout).toMatch(/001_create_users\s+\| applied\s+\| users v0→v1\s+\| 32\/32/), { timeoutMs: 15_000 });

    const listed = await admin.router.listShards(router.ListShardsRequest.create({ table: "users" }));
    shards = [];
    for (let id = 1; shards.length < listed.shards.length && id < 500; id++) {
      const plan = await admin.explain("SELECT * FROM users WHERE id = ?", [id]);
      const shardId = plan.targets[0]!.shard!.shardId;
      if (shards.some((s) => s.shardId === shardId)) continue;
      const nodeId = plan.targets[0]!.primaryNodeId;
      shards.push({ shardId, nodeId, primary: nameOf(nodeId), id });
      await admin.execute("INSERT INTO users (id, name) VALUES (?, ?)", [id, `user ${id}`]);
    }
    expect(shards).toHaveLength(8);
    const again = await cli("migrate", "--dir", dir);
    expect(again.stdout).toMatch(/all 1 migrations are applied/);
  });

  test("a node killed mid-migration: partially applied, its shards refused, the rerun finishes it", async () => {
    // The primary of the first shard: the migration tries it first (the trial copy), finds it dead, and
    // takes the next copy of that shard instead.
    const victim = shards.find((s) => s.shardId.endsWith("-0000"))!;
    const victimShards = shards.filter((s) => s.nodeId === victim.nodeId);
    const healthy = shards.filter((s) => s.nodeId !== victim.nodeId);
    expect(healthy.length).toBeGreaterThan(0);
    await cluster.kill(victim.primary, "SIGTERM");
    await cluster.restart(victim.primary, { MYCELIUM_FAULT_POINTS: "node.before-apply-schema" });

    write("002_add_email.sql", "ALTER TABLE users ADD COLUMN email TEXT;\nCREATE INDEX users_email ON users (email)");
    const failed = await cli("migrate", "--dir", dir);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`UNAVAILABLE \\(MIGRATION_INCOMPLETE\\): migration 002_add_email reached ${8 - victimShards.length} of 8 copies of users's shards`));
    expect(failed.stderr).toContain(`on ${victim.nodeId}`);
    await eventually(() => {
      const child = cluster.process(victim.primary).child;
      if (child.exitCode === null && child.signalCode === null) throw new Error("the armed node is still running");
    });
    expect(cluster.process(victim.primary).child.signalCode).toBe("SIGKILL");

    const status = await cli("migrate", "status", "--dir", dir);
    expect(status.stderr).toBe("");
    expect(status.stdout).toMatch(/001_create_users\s+\| applied/);
    expect(status.stdout).toMatch(/002_add_email\s+\| partially applied \| users v1→v2\s+\| \d+\/32/);
    for (const { shardId } of victimShards) expect(status.stdout).toContain(`${shardId} on node ${victim.nodeId} (users at version 1)`);

    // The dead node's shards are refused with the reason; the others serve the new schema.
    const refusal = await admin.execute("SELECT id, email FROM users WHERE id = ?", [victim.id]).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: "UNAVAILABLE", reason: "SCHEMA_VERSION" });
    // Named: the victim, or the secondary promoted in its place once its lease lapsed (it is behind too).
    expect((refusal as Error).message).toMatch(new RegExp(`^shard ${victim.shardId} on node \\S+ has schema version 1 of table users, which is at version 2 \\(the copy is behind\\)`));
    for (const shard of healthy) {
      await admin.execute("UPDATE users SET email = ? WHERE id = ?", [`${shard.id}@example.com`, shard.id]);
      expect((await admin.execute("SELECT email FROM users WHERE id = ?", [shard.id])).rows).toEqual([[`${shard.id}@example.com`]]);
    }

    // Back up, without the fault: still behind (version 1), so still refused until the migration finishes.
    await cluster.restart(victim.primary, { MYCELIUM_FAULT_POINTS: "" });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few heartbeats: they report version 1
    await expect(admin.execute("SELECT id FROM users WHERE id = ?", [victim.id])).rejects.toMatchObject({ reason: "SCHEMA_VERSION" });

    const finished = await cli("migrate", "--dir", dir);
    expect(finished.stderr).toBe("");
    expect(finished.code).toBe(0);
    expect(finished.stdout).toMatch(/002_add_email\s+\| applied\s+\| users v1→v2\s+\| \d+\/32/);
    // Only the shards whose primary was killed ran it now (on the victim or its successor): nothing done
    // before was run again.
    expect(finished.stdout).toMatch(new RegExp(`${victimShards.length} shard copies migrated, 0 already had it`));

    for (const shard of [...victimShards, ...healthy]) {
      await admin.execute("UPDATE users SET email = ? WHERE id = ?", [`new-${shard.id}`, shard.id]);
    }
    const rows = await admin.execute("SELECT id, name, email FROM users ORDER BY id");
    expect(rows.rows).toEqual(shards.map((s) => s.id).sort((a, b) => a - b).map((id) => [id, `user ${id}`, `new-${id}`]));

    await eventually(async () => expect((await cli("migrate", "status", "--dir", dir)).stdout).not.toMatch(/partially|pending/), { timeoutMs: 15_000 });
    expect((await cli("migrate", "--dir", dir)).stdout).toMatch(/all 2 migrations are applied/);
  });

  test("an applied file that changed is refused; a file the database refuses changes nothing", async () => {
    write("002_add_email.sql", "ALTER TABLE users ADD COLUMN mail TEXT");
    const changed = await cli("migrate", "--dir", dir);
    expect(changed.stderr).toMatch(/FAILED_PRECONDITION \(MIGRATION_CHANGED\): migration 002_add_email was applied with other statements/);
    write("002_add_email.sql", "ALTER TABLE users ADD COLUMN email TEXT;\nCREATE INDEX users_email ON users (email)");

    // Valid for the router, refused by the database: the index names a column that does not exist.
    write("003_bad_index.sql", "CREATE INDEX users_nosuch ON users (nosuch)");
    const bad = await cli("migrate", "--dir", dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\(MIGRATION_REFUSED\): migration 003_bad_index failed on shard users-0000 \(node [0-9a-z]+\), nothing was changed: schema statement 1 on shard users-0000: (no such column: nosuch|column "nosuch" does not exist)/);
    expect((await cli("migrate", "status", "--dir", dir)).stdout).toMatch(/003_bad_index\s+\| pending/);
    expect((await admin.execute("SELECT count(*) FROM users")).rows).toEqual([[shards.length]]);

    write("003_bad_index.sql", "CREATE INDEX users_name_email ON users (name, email)");
    expect((await cli("migrate", "--dir", dir)).stdout).toMatch(/003_bad_index\s+\| applied\s+\| users v2→v3/);
  });

  test("ad-hoc DDL is a versioned migration too", async () => {
    await admin.execute("ALTER TABLE users ADD COLUMN nickname TEXT");
    await admin.execute("UPDATE users SET nickname = 'n' WHERE id = ?", [shards[0]!.id]);
    const schema = await admin.router.getTableSchema(router.GetTableSchemaRequest.create({ table: "users" }));
    expect(schema.schemaVersion).toBe(4);
    expect((await cli("migrate", "--dir", dir)).stdout).toMatch(/all 3 migrations are applied/);
  });
});
