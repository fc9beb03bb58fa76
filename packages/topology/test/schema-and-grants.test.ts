import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GrantStore, MigrationStore, openControlStore, type ControlStore, type MigrationRecord } from "@mycelium/topology";

let dir: string;
let store: ControlStore;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-topology-"));
  store = await openControlStore(`sqlite:${path.join(dir, "control.db")}`);
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("MigrationStore", () => {
  const record = (id: string, startedAtMs: number): MigrationRecord => ({
    id,
    number: Number(id.slice(0, 3)),
    name: id.slice(4),
    checksum: "c",
    statements: ["ALTER TABLE t ADD COLUMN x TEXT"],
    adHoc: false,
    tables: [{ table: "t", statements: ["ALTER TABLE t ADD COLUMN x TEXT"], fromVersion: 1, toVersion: 2 }],
    done: {},
    state: "applying",
    startedAtMs,
    appliedAtMs: null,
  });

  test("records migrations once, lists them in start order, updates them by compare-and-set", async () => {
    const migrations = new MigrationStore(store);
    expect(await migrations.createMigration(record("002_b", 20))).toBe(true);
    expect(await migrations.createMigration(record("001_a", 10))).toBe(true);
    expect(await migrations.createMigration(record("001_a", 30))).toBe(false);
    expect((await migrations.listMigrations()).map((m) => m.id)).toEqual(["001_a", "002_b"]);
    const updated = await migrations.updateMigration("001_a", (m) => ({ ...m, done: { ...m.done, "t-0000@n1": 5 } }));
    expect(updated?.done).toEqual({ "t-0000@n1": 5 });
    await migrations.deleteMigration("002_b");
    expect(await migrations.getMigration("002_b")).toBeNull();
  });

  test("a copy's report counts only when it has applied more migrations than recorded", async () => {
    const migrations = new MigrationStore(store);
    const report = (version: number, appliedCount: number) => ({ shardId: "t-0000", nodeId: "n1", table: "t", version, appliedCount, lastMigrationId: `m${appliedCount}`, atMs: 1 });
    expect(await migrations.recordReplicas([report(1, 1)])).toBe(1);
    expect(await migrations.recordReplicas([report(2, 2)])).toBe(1);
    expect(await migrations.recordReplicas([report(1, 1), report(2, 2)])).toBe(0); // stale and repeated reports
    expect((await migrations.listReplicas()).map((r) => [r.version, r.appliedCount])).toEqual([[2, 2]]);
    await migrations.forgetReplica("t-0000", "n1");
    expect(await migrations.recordReplicas([report(0, 0)])).toBe(1);
  });
});

describe("GrantStore", () => {
  test("enforcement is off until set; snapshot reads everything at one revision", async () => {
    const grants = new GrantStore(store);
    expect((await grants.enforcement()).enforced).toBe(false);
    await grants.grant("readers", "*", ["SELECT"]);
    await grants.assignRole("alice", "readers");
    await grants.setEnforcement(true, 42);
    const snapshot = await grants.snapshot();
    expect(snapshot).toEqual({ revision: await store.revision(), enforced: true, roles: [{ role: "readers", tables: { "*": ["SELECT"] } }], members: [{ identity: "alice", roles: ["readers"] }] });
  });

  test("an identity is also a role of its own name", async () => {
    const grants = new GrantStore(store);
    await grants.grant("bob", "orders", ["INSERT"]);
    await grants.grant("writers", "orders", ["UPDATE"]);
    await grants.assignRole("bob", "writers");
    expect(await grants.privilegesOf("bob", "orders")).toEqual(["INSERT", "UPDATE"]);
    await expect(grants.grant(" ", "orders", ["INSERT"])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});
