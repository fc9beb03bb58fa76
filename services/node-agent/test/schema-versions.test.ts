import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openShardStore, testing, type ShardStore, type ShardStoreOptions } from "@mycelium/db";
import { nodeagent } from "@mycelium/proto";
import { SchemaVersions } from "../src/schema-versions";

/**
 * Versioned DDL on one shard, on both backends: applied with its record in one local transaction, a
 * re-delivery skipped, out-of-order refused, a failing migration leaves neither DDL nor record, and the
 * record survives a restart (it is in the shard's own database).
 */
describe.each(["sqlite", "postgres"] as const)("SchemaVersions on %s", (backend) => {
  let server: testing.PostgresServer | null = null;
  let counter = 0;
  const stores: ShardStore[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    if (backend === "postgres") server = await testing.startPostgresServer();
  }, 120_000);

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  afterAll(async () => {
    await server?.stop();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function freshOptions(): Promise<ShardStoreOptions> {
    if (backend === "postgres") return { kind: "postgres", url: await server!.createDatabase(`schema_versions_${++counter}`), sslMode: "disable", maxConnections: 4 };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-schema-versions-"));
    dirs.push(dir);
    return { kind: "sqlite", dataDir: dir };
  }

  async function open(options: ShardStoreOptions): Promise<ShardStore> {
    const store = await openShardStore(options);
    stores.push(store);
    return store;
  }

  const migration = (id: string, fromVersion: number, schemaVersion: number, ...ddl: string[]) =>
    nodeagent.ApplySchemaRequest.create({ shard: { shardId: "users-0000", epoch: 1 }, table: "users", ddl, migrationId: id, fromVersion, schemaVersion });

  test("applies, records, skips a re-delivery, and the record survives a restart", async () => {
    const options = await freshOptions();
    const store = await open(options);
    const versions = new SchemaVersions(store);
    expect(await versions.state("users-0000", "users").catch(() => null)).toBeNull(); // no shard yet

    const first = await versions.apply("users-0000", migration("001_create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY)"));
    expect([first.alreadyApplied, first.schema]).toEqual([false, { table: "users", version: 1, appliedCount: 1, lastMigrationId: "001_create" }]);
    const second = await versions.apply("users-0000", migration("002_email", 1, 2, "ALTER TABLE users ADD COLUMN email TEXT", "CREATE INDEX users_email ON users (email)"));
    expect(second.schema).toMatchObject({ version: 2, appliedCount: 2, lastMigrationId: "002_email" });

    // Delivered again (the coordinator did not hear the answer): nothing runs, no duplicate-column error.
    const again = await versions.apply("users-0000", migration("002_email", 1, 2, "ALTER TABLE users ADD COLUMN email TEXT", "CREATE INDEX users_email ON users (email)"));
    expect([again.alreadyApplied, again.schema?.version]).toEqual([true, 2]);

    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const reopened = new SchemaVersions(await open(options));
    expect(await reopened.state("users-0000", "users")).toEqual({ table: "users", version: 2, appliedCount: 2, lastMigrationId: "002_email" });
    expect((await reopened.apply("users-0000", migration("001_create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY)"))).alreadyApplied).toBe(true);
    const report = await reopened.report([{ shardId: "users-0000", table: "users" }, { shardId: "users-9999", table: "users" }]);
    expect(report.map((r) => [r.shardId, r.schema?.version])).toEqual([["users-0000", 2]]);
  });

  test("a migration for another version is refused; a failing one leaves neither DDL nor record", async () => {
    const store = await open(await freshOptions());
    const versions = new SchemaVersions(store);
    await versions.apply("users-0000", migration("001_create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY)"));
    await expect(versions.apply("users-0000", migration("003_late", 2, 3, "ALTER TABLE users ADD COLUMN late TEXT"))).rejects.toMatchObject({ code: "FAILED_PRECONDITION", reason: "SCHEMA_VERSION" });

    // The second statement fails: the first must not stay, nor the record.
    await expect(versions.apply("users-0000", migration("002_bad", 1, 2, "ALTER TABLE users ADD COLUMN email TEXT", "ALTER TABLE nosuch ADD COLUMN x TEXT"))).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await new SchemaVersions(store).state("users-0000", "users")).toMatchObject({ version: 1, appliedCount: 1 });
    const fixed = await versions.apply("users-0000", migration("002_good", 1, 2, "ALTER TABLE users ADD COLUMN email TEXT"));
    expect(fixed.schema).toMatchObject({ version: 2, lastMigrationId: "002_good" });
  });

  test("concurrent deliveries of one migration run it once", async () => {
    const store = await open(await freshOptions());
    const versions = new SchemaVersions(store);
    await versions.apply("users-0000", migration("001_create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY)"));
    const request = migration("002_email", 1, 2, "ALTER TABLE users ADD COLUMN email TEXT");
    const answers = await Promise.all([versions.apply("users-0000", request), versions.apply("users-0000", request), versions.apply("users-0000", request)]);
    expect(answers.map((a) => a.alreadyApplied).sort()).toEqual([false, true, true]);
  });

  test("a drop moves the table to version 0 and a new CREATE starts again at 1", async () => {
    const store = await open(await freshOptions());
    const versions = new SchemaVersions(store);
    await versions.apply("users-0000", migration("001_create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY)"));
    expect((await versions.apply("users-0000", migration("sql-drop", 1, 0, "DROP TABLE users"))).schema).toMatchObject({ version: 0, appliedCount: 2 });
    expect((await versions.apply("users-0000", migration("sql-create", 0, 1, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))).schema).toMatchObject({ version: 1, appliedCount: 3 });
  });
});
