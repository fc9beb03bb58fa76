import { router } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { analyze, loadSqlParser } from "@mycelium/sql";
import { planMigrations } from "../src/core/migration-planner";
import { planStatement, tableAccess } from "../src/core/route-planner";
import { compareSchemaVersions, ReplicaSchemaIndex, schemaVersionError } from "../src/core/schema-versions";
import { fixtureSnapshot } from "./support/fixture";

beforeAll(() => loadSqlParser());

const sqlite = (sql: string) => analyze(sql, { dialect: "sqlite", params: [] });

function refusal(run: () => unknown): MyceliumError {
  try {
    run();
  } catch (error) {
    if (error instanceof MyceliumError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("schema version comparison", () => {
  test.each([
    [3, 3, "same"],
    [2, 3, "behind"],
    [0, 1, "behind"],
    [4, 3, "ahead"],
    [1, 0, "ahead"],
  ] as const)("copy at %i, table at %i → %s", (replica, table, expected) => {
    expect(compareSchemaVersions(replica, table)).toBe(expected);
  });

  test("the refusal names shard, node and both versions; none when equal", () => {
    expect(schemaVersionError("users", "users-0001", "n2", 5, 5)).toBeNull();
    const error = schemaVersionError("users", "users-0001", "n2", 4, 5)!;
    expect([error.code, error.reason]).toEqual(["UNAVAILABLE", "SCHEMA_VERSION"]);
    expect(error.message).toMatch(/^shard users-0001 on node n2 has schema version 4 of table users, which is at version 5 \(the copy is behind\)/);
    expect(error.details).toEqual({ table: "users", shardId: "users-0001", nodeId: "n2", replicaVersion: "4", tableVersion: "5" });
  });

  test("a copy that never reported is at version 0", () => {
    const index = new ReplicaSchemaIndex([{ shardId: "users-0000", nodeId: "n1", table: "users", version: 2, appliedCount: 2, lastMigrationId: "002_x" }]);
    expect(index.version("users-0000", "n1")).toBe(2);
    expect(index.version("users-0000", "n2")).toBe(0);
  });
});

describe("routing refuses copies whose schema version differs from the table's", () => {
  // The fixture's tables are at version 1; copies report through replicaSchemaVersion.
  function snapshotWith(versions: Record<string, number>, fallback = 1) {
    return { ...fixtureSnapshot(), replicaSchemaVersion: (shardId: string, nodeId: string) => versions[`${shardId}@${nodeId}`] ?? fallback };
  }
  const route = (sql: string, snapshot: ReturnType<typeof snapshotWith>) => planStatement({ sql, params: [], analysis: sqlite(sql) }, snapshot);

  test("every copy at the table's version: routed as before", () => {
    expect(route("SELECT * FROM users", snapshotWith({})).targets).toHaveLength(4);
  });

  test("a primary behind: a statement touching its shard is refused, others are routed", () => {
    const snapshot = snapshotWith({ "users-0003@n4": 0 });
    const error = refusal(() => route("SELECT * FROM users WHERE id = 42", snapshot)); // users-0003, primary n4
    expect([error.code, error.reason, error.details.shardId, error.details.nodeId]).toEqual(["UNAVAILABLE", "SCHEMA_VERSION", "users-0003", "n4"]);
    expect(refusal(() => route("SELECT count(*) FROM users", snapshot)).reason).toBe("SCHEMA_VERSION");
    expect(route("SELECT * FROM users WHERE id = 1", snapshot).targets[0]!.shard!.shardId).not.toBe("users-0003");
  });

  test("a secondary behind does not stop reads and writes on its primary", () => {
    const snapshot = snapshotWith({ "users-0003@n5": 0 });
    expect(route("UPDATE users SET name = 'x' WHERE id = 42", snapshot).targets).toHaveLength(1);
  });

  test("a copy ahead (migrated, table not yet recorded) is refused too", () => {
    const error = refusal(() => route("INSERT INTO users (id, name) VALUES (42, 'a')", snapshotWith({ "users-0003@n4": 2 })));
    expect(error.message).toMatch(/has schema version 2 of table users, which is at version 1 \(the copy is ahead\)/);
  });

  test("co-located and reference shards are checked on the target's node", () => {
    const colocated = snapshotWith({ "orders-0003@n4": 0 });
    expect(refusal(() => route("SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 42", colocated)).details.shardId).toBe("orders-0003");
    const reference = snapshotWith({ "countries-0000@n4": 0 });
    expect(refusal(() => route("SELECT * FROM users u JOIN countries c ON c.code = u.country WHERE u.id = 42", reference)).details.shardId).toBe("countries-0000");
  });

  test("DDL goes to every copy whatever its version (it is how copies catch up)", () => {
    expect(route("ALTER TABLE users ADD COLUMN email TEXT", snapshotWith({}, 0)).targets).toHaveLength(4);
  });
});

describe("tableAccess: which tables a statement writes and reads", () => {
  test.each([
    ["SELECT * FROM users", "", ["users"], false],
    ["SELECT * FROM users u JOIN orders o ON o.user_id = u.id", "", ["users", "orders"], false],
    ["INSERT INTO users (id) VALUES (1)", "users", [], false],
    ["INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name", "users", [], true],
    ["INSERT OR REPLACE INTO users (id) VALUES (1)", "users", [], true],
    ["INSERT INTO users (id) VALUES (1) ON CONFLICT DO NOTHING", "users", [], false],
    ["INSERT INTO users (id) VALUES (1) RETURNING id", "users", ["users"], false],
    ["UPDATE users SET name = 'x' WHERE id = 1", "users", [], false],
    ["UPDATE orders SET total = 0 WHERE user_id IN (SELECT id FROM users WHERE age > 3)", "orders", ["users"], false],
    ["UPDATE users SET age = 1 WHERE id IN (SELECT id FROM users WHERE age > 3)", "users", ["users"], false],
    ["DELETE FROM users WHERE id = 1", "users", [], false],
    ["DELETE FROM users WHERE id = 1 RETURNING name", "users", ["users"], false],
  ] as const)("%s", (sql, writeTable, readTables, upsert) => {
    expect(tableAccess(sqlite(sql))).toEqual({ writeTable, readTables, upsert });
  });

  test("plans carry it", () => {
    const plan = planStatement({ sql: "DELETE FROM users WHERE id = 1", params: [], analysis: sqlite("DELETE FROM users WHERE id = 1") }, fixtureSnapshot());
    expect([plan.writeTable, plan.readTables, plan.upsert]).toEqual(["users", [], false]);
  });
});

describe("planMigrations", () => {
  const plan = (...migrations: Array<[string, string[]]>) => planMigrations(migrations.map(([id, statements]) => ({ id, statements })), fixtureSnapshot(), sqlite);

  test("each migration moves each table it changes one version; later migrations see earlier ones", () => {
    const plans = plan(
      ["001_create", ["CREATE TABLE drafts (id INTEGER PRIMARY KEY, body TEXT)", "CREATE INDEX drafts_body ON drafts (body)"]],
      ["002_more", ["ALTER TABLE drafts ADD COLUMN title TEXT", "ALTER TABLE users ADD COLUMN email TEXT"]],
      ["003_drop", ["DROP TABLE drafts"]],
    );
    expect(plans.map((p) => [p.id, p.tables.map((t) => [t.table, t.fromVersion, t.toVersion, t.statements.length])])).toEqual([
      ["001_create", [["drafts", 0, 1, 2]]],
      ["002_more", [["drafts", 1, 2, 1], ["users", 1, 2, 1]]],
      ["003_drop", [["drafts", 2, 0, 1]]],
    ]);
  });

  test("a statement on a table created earlier in the same migration is accepted", () => {
    expect(plan(["001", ["CREATE TABLE drafts (id INTEGER PRIMARY KEY)", "ALTER TABLE drafts ADD COLUMN x TEXT"]])[0]!.tables[0]!.toVersion).toBe(1);
  });

  test("every table without a policy is named at once", () => {
    const error = refusal(() => plan(["001", ["CREATE TABLE accounts (id INTEGER PRIMARY KEY)"]], ["002", ["CREATE TABLE ledger (id INTEGER PRIMARY KEY)", "ALTER TABLE accounts ADD COLUMN x TEXT"]]));
    expect([error.code, error.reason]).toEqual(["FAILED_PRECONDITION", "NO_POLICY"]);
    expect(error.message).toMatch(/no sharding policy: accounts \(001, 002\), ledger \(002\)/);
  });

  test.each([
    [["CREATE TABLE users (id INTEGER PRIMARY KEY)"], "ALREADY_EXISTS", "TABLE_EXISTS", /^migration 001, statement 1: table users already exists/],
    [["CREATE TABLE drafts (body TEXT PRIMARY KEY)"], "INVALID_ARGUMENT", "SHARD_KEY_NOT_COLUMN", /statement 1: shard key id/],
    [["ALTER TABLE drafts ADD COLUMN x TEXT"], "NOT_FOUND", "NO_TABLE", /statement 1: table drafts does not exist/],
    [["INSERT INTO users (id) VALUES (1)"], "INVALID_ARGUMENT", "NOT_DDL", /statement 1 is not DDL \(INSERT\)/],
    [["CREATE TABLE drafts (id INTEGER PRIMARY KEY", ], "INVALID_ARGUMENT", undefined, /statement 1: /],
  ] as const)("refuses %j", (statements, code, reason, message) => {
    const error = refusal(() => plan(["001", [...statements]]));
    expect(error.code).toBe(code);
    if (reason) expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
  });

  test("answers in the wire shape", () => {
    expect(plan(["001", ["DROP TABLE IF EXISTS drafts"]])[0]).toEqual(router.MigrationPlan.create({ id: "001", tables: [{ table: "drafts", statements: ["DROP TABLE IF EXISTS drafts"], fromVersion: 0, toVersion: 0 }] }));
  });
});
