/**
 * Joins that the router plans shard by shard (issue 3) run on the nodes: tables of one colocation group
 * joined on their shard keys, and any sharded table joined with a reference table. The node makes the
 * partner shards visible beside the statement's own (SQLite: ATTACH; PostgreSQL: search_path), so the
 * answers must equal what one database holding every row would give.
 */
import { common, router } from "@mycelium/proto";
import { TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";

jest.setTimeout(180_000);

const users = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, name: `user${i + 1}`, country: ["de", "fr", "jp"][i % 3]! }));
const orders = users.flatMap((user) => Array.from({ length: user.id % 4 }, (_, k) => ({ id: user.id * 10 + k, userId: user.id, total: (user.id * 7 + k * 13) % 100 })));
const countries = [
  { code: "de", name: "Germany" },
  { code: "fr", name: "France" },
  { code: "jp", name: "Japan" },
];

describe.each(["sqlite", "postgres"] as const)("on %s nodes", (backend) => {
  let cluster: TestCluster;
  let db: MyceliumClient;

  beforeAll(async () => {
    cluster = await TestCluster.start({ validators: 2, miners: 1, backend });
    db = cluster.client("admin", { deadlineMs: 20_000 });
    const policy = (table: string, shardKeys: string[], extra: Partial<common.TablePolicy>) =>
      db.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table, shardKeys, ...extra }) }));
    await policy("users", ["user_id"], { initialShardCount: 4, replicationFactor: 0.5, colocationGroup: "people" });
    await policy("orders", ["user_id"], { initialShardCount: 4, replicationFactor: 0.5, colocationGroup: "people" });
    // A reference table is read from whichever copy sits beside the shard: synchronous to every copy, so a
    // join right after a write sees it (3 nodes: the primary and 2 secondaries).
    await policy("countries", ["code"], { initialShardCount: 1, replicationFactor: 1, replicationSync: common.ReplicationSync.REPLICATION_SYNC_SYNC, syncReplicas: 2 });
    await db.execute("CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL)");
    await db.execute("CREATE TABLE orders (user_id INTEGER NOT NULL, order_id INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (user_id, order_id))");
    await db.execute("CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT NOT NULL)");
    await db.execute(`INSERT INTO users (user_id, name, country) VALUES ${users.map(() => "(?, ?, ?)").join(", ")}`, users.flatMap((u) => [u.id, u.name, u.country]));
    await db.execute(`INSERT INTO orders (order_id, user_id, total) VALUES ${orders.map(() => "(?, ?, ?)").join(", ")}`, orders.flatMap((o) => [o.id, o.userId, o.total]));
    await db.execute(`INSERT INTO countries (code, name) VALUES ${countries.map(() => "(?, ?)").join(", ")}`, countries.flatMap((c) => [c.code, c.name]));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  const numbers = (rows: unknown[][]) => rows.map((row) => row.map((value) => (typeof value === "bigint" ? Number(value) : value)));

  test("a co-located join on one shard key value runs on that shard", async () => {
    const user = users.find((u) => u.id % 4 === 3)!;
    const plan = await db.explain("SELECT u.name, SUM(o.total) FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = ? GROUP BY u.name", [user.id]);
    expect(plan.targets).toHaveLength(1);
    const result = await db.execute("SELECT u.name, SUM(o.total) FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = ? GROUP BY u.name", [user.id]);
    const expected = orders.filter((o) => o.userId === user.id).reduce((sum, o) => sum + o.total, 0);
    expect(numbers(result.rows)).toEqual([[user.name, expected]]);
  });

  test("a co-located join over every shard, merged with ORDER BY and LIMIT", async () => {
    const result = await db.execute("SELECT u.name, o.order_id, o.total FROM users u JOIN orders o ON o.user_id = u.user_id ORDER BY o.total DESC, o.order_id LIMIT 5");
    const expected = orders
      .map((o) => [users.find((u) => u.id === o.userId)!.name, o.id, o.total] as const)
      .sort((a, b) => b[2] - a[2] || a[1] - b[1])
      .slice(0, 5);
    expect(numbers(result.rows)).toEqual(expected.map((row) => [...row]));
  });

  test("a co-located join with grouped aggregates over every shard", async () => {
    const result = await db.execute("SELECT u.country, COUNT(*) FROM users u JOIN orders o ON o.user_id = u.user_id GROUP BY u.country ORDER BY u.country");
    const counts = new Map<string, number>();
    for (const o of orders) {
      const country = users.find((u) => u.id === o.userId)!.country;
      counts.set(country, (counts.get(country) ?? 0) + 1);
    }
    expect(numbers(result.rows)).toEqual([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  });

  test("a join with a reference table reads the node's copy of it", async () => {
    const result = await db.execute("SELECT u.user_id, c.name FROM users u JOIN countries c ON c.code = u.country WHERE u.user_id IN (1, 2, 3) ORDER BY u.user_id");
    expect(numbers(result.rows)).toEqual([
      [1, "Germany"],
      [2, "France"],
      [3, "Japan"],
    ]);
  });

  test("a join under a transaction's locks is refused with what to do instead", async () => {
    const tx = await db.begin();
    try {
      await expect(tx.execute("SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.user_id WHERE u.user_id = ?", [3])).rejects.toMatchObject({
        code: "FAILED_PRECONDITION",
        reason: "JOIN_NEEDS_PLAIN_READ",
        message: expect.stringContaining("run the join as a plain read"),
      });
    } finally {
      await tx.rollback();
    }
  });
});
