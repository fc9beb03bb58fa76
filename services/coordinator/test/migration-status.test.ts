import { coordinator } from "@mycelium/proto";
import type { MigrationRecord } from "@mycelium/topology";
import { checkMigrationFiles, migrationChecksum, migrationStatus, pendingMigrations } from "../src/core/migration-status";
import { isRecordedOnRouter } from "../src/migrations";

const file = (id: string, ...statements: string[]) => coordinator.Migration.create({ id, statements });

function record(id: string, number: number, fields: Partial<MigrationRecord> = {}): MigrationRecord {
  const statements = fields.statements ?? [`ALTER TABLE users ADD COLUMN c${number} TEXT`];
  return {
    id,
    number,
    name: id.slice(4),
    checksum: migrationChecksum(statements),
    statements,
    adHoc: false,
    tables: [{ table: "users", statements, fromVersion: number, toVersion: number + 1 }],
    done: {},
    state: "applied",
    startedAtMs: number,
    appliedAtMs: number,
    ...fields,
  };
}

describe("checkMigrationFiles", () => {
  test("numbers from the ids, statements trimmed, checksums computed here", () => {
    const [a, b] = checkMigrationFiles([file("001_create_users", " CREATE TABLE users (id INTEGER PRIMARY KEY) "), file("010_add_email", "ALTER TABLE users ADD COLUMN email TEXT")]);
    expect([a!.number, a!.name, a!.statements]).toEqual([1, "create_users", ["CREATE TABLE users (id INTEGER PRIMARY KEY)"]]);
    expect(b!.number).toBe(10);
    expect(a!.checksum).toBe(migrationChecksum(["CREATE TABLE users (id INTEGER PRIMARY KEY)"]));
  });

  test.each([
    [[file("create_users", "x")], /is not <number>_<name>/],
    [[file("001_a", "x"), file("1_b", "y")], /have the same number 1/],
    [[file("002_a", "x"), file("001_b", "y")], /must be sent in ascending order/],
    [[file("001_a", "  ")], /has no statements/],
  ])("refuses %#", (files, message) => {
    expect(() => checkMigrationFiles(files)).toThrow(message);
  });
});

describe("version comparison: has the router recorded the migration's result?", () => {
  const change = { table: "users", statements: ["ALTER TABLE users ADD COLUMN e TEXT"], fromVersion: 2, toVersion: 3 };
  test.each([
    ["still at the old version", { version: 2, ddl: ["CREATE TABLE users (id INTEGER PRIMARY KEY)"] }, false],
    ["at the new version, ending with the statements", { version: 3, ddl: ["CREATE TABLE users (id INTEGER PRIMARY KEY)", "ALTER TABLE users ADD COLUMN e TEXT"] }, true],
    ["at the new version by other statements", { version: 3, ddl: ["CREATE TABLE users (id INTEGER PRIMARY KEY)", "ALTER TABLE users ADD COLUMN f TEXT"] }, false],
    ["further on", { version: 4, ddl: [] }, false],
  ])("%s", (_name, routerSchema, expected) => {
    expect(isRecordedOnRouter(change, routerSchema)).toBe(expected);
  });
  test("a drop is recorded once the schema is gone", () => {
    expect(isRecordedOnRouter({ ...change, toVersion: 0 }, { version: 0, ddl: [] })).toBe(true);
    expect(isRecordedOnRouter({ ...change, toVersion: 0 }, { version: 2, ddl: ["x"] })).toBe(false);
  });
});

describe("pendingMigrations", () => {
  const files = checkMigrationFiles([file("001_a", "ALTER TABLE users ADD COLUMN c1 TEXT"), file("002_b", "ALTER TABLE users ADD COLUMN c2 TEXT"), file("003_c", "ALTER TABLE users ADD COLUMN c3 TEXT")]);

  test("the files the control store does not know, in order", () => {
    expect(pendingMigrations(files, [record("001_a", 1)]).map((f) => f.id)).toEqual(["002_b", "003_c"]);
    expect(pendingMigrations(files, []).map((f) => f.id)).toEqual(["001_a", "002_b", "003_c"]);
    expect(pendingMigrations(files, [record("001_a", 1), record("sql-1", 0, { adHoc: true })]).map((f) => f.id)).toEqual(["002_b", "003_c"]);
  });

  test("a changed file is refused", () => {
    expect(() => pendingMigrations(files, [record("001_a", 1, { statements: ["ALTER TABLE users ADD COLUMN other TEXT"] })])).toThrow(/migration 001_a was applied with other statements/);
  });

  test("a new file numbered below a recorded one is refused", () => {
    expect(() => pendingMigrations([files[0]!, files[2]!], [record("002_b", 2)])).toThrow(/001_a is new but numbered at or below 002_b/);
  });
});

describe("migrationStatus", () => {
  const copies = (table: string) => ["users-0000", "users-0001"].flatMap((shardId) => ["n1", "n2"].map((nodeId) => ({ table, shardId, nodeId })));

  test("partially applied: the copies not done, with their recorded versions", () => {
    const status = migrationStatus(record("002_b", 2, { state: "applying", done: { "users-0000@n1": 5, "users-0000@n2": 5, "users-0001@n1": 6 } }), copies, () => 2);
    expect(status.state).toBe(coordinator.MigrationState.MIGRATION_STATE_PARTIAL);
    expect([status.replicasDone, status.replicasTotal]).toEqual([3, 4]);
    expect(status.behind).toEqual([{ table: "users", shardId: "users-0001", nodeId: "n2", version: 2 }]);
  });

  test("applied", () => {
    const status = migrationStatus(record("002_b", 2), copies, () => 3);
    expect([status.state, status.behind, status.replicasDone]).toEqual([coordinator.MigrationState.MIGRATION_STATE_APPLIED, [], 4]);
  });
});
