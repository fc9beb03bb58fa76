import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openShardStore, testing, type ChangeEntry, type ShardStore, type SnapshotChunk, type SqlValue } from "@mycelium/db";

// Mixed clusters: a shard's primary on one backend and its secondary on the other. The schema travels in the
// log as the DDL the primary ran, so it must be valid on both (BYTEA is a blob column on SQLite too, BOOLEAN
// values are 1/0 there); rows and checksums must come out the same either way.

let server: testing.PostgresServer;
let databases = 0;
let nodes = 0;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-db-mixed-"));
const stores: ShardStore[] = [];

beforeAll(async () => {
  server = await testing.startPostgresServer();
}, 120_000);

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

async function open(kind: "sqlite" | "postgres", nodeId: string): Promise<ShardStore> {
  const store =
    kind === "sqlite"
      ? await openShardStore({ kind, dataDir: path.join(root, `node-${++nodes}`), nodeId })
      : await openShardStore({ kind, url: await server.createDatabase(`mixed_${++databases}`), sslMode: "disable", nodeId });
  stores.push(store);
  await store.ensureShard("s1");
  return store;
}

async function workload(store: ShardStore): Promise<void> {
  await store.applySchema("s1", [
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty BIGINT, price DOUBLE PRECISION, data BYTEA, flag BOOLEAN)",
  ]);
  const insert = "INSERT INTO items (id, name, qty, price, data, flag) VALUES (?, ?, ?, ?, ?, ?)";
  await store.executeAutocommit("s1", [
    { sql: insert, params: [2n ** 62n, "big", -(2n ** 60n), 0.1, new Uint8Array([0, 255, 7]), true] },
    { sql: insert, params: [1, "one", 1, 1.5, null, false] },
    { sql: insert, params: [2, "two", null, -0.25, new Uint8Array(0), null] },
  ]);
  await Promise.all(
    Array.from({ length: 10 }, (_, index) => store.executeAutocommit("s1", [{ sql: insert, params: [10 + index, `n${index}`, index, index / 7, null, index % 2 === 0] }])),
  );
  const tx = await store.begin("s1", "tx-mixed");
  await tx.execute("UPDATE items SET qty = qty + 1, flag = ? WHERE id < 15", [true]);
  await tx.execute("DELETE FROM items WHERE id = 19");
  await tx.prepare();
  await tx.commit();
  const swap = await store.begin("s1", "tx-swap");
  await swap.execute("UPDATE items SET name = 'tmp' WHERE id = 1");
  await swap.execute("UPDATE items SET name = 'one' WHERE id = 2");
  await swap.execute("UPDATE items SET name = 'two' WHERE id = 1");
  await swap.commit();
  await store.applySchema("s1", ["ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'x'"]);
  await store.executeAutocommit("s1", [{ sql: "UPDATE items SET note = ? WHERE id = ?", params: ["é", 2n ** 62n] }]);
}

/** Rows as both backends agree on them: booleans as 1/0 (SQLite has none), bytes as Uint8Array. */
async function rows(store: ShardStore): Promise<SqlValue[][]> {
  const result = await store.read("s1", "SELECT id, name, qty, price, data, flag, note FROM items ORDER BY id", []);
  return result.rows.map((row) =>
    row.map((value) => (typeof value === "boolean" ? (value ? 1 : 0) : value instanceof Uint8Array ? new Uint8Array(value) : value)),
  );
}

async function allEntries(store: ShardStore): Promise<ChangeEntry[]> {
  return store.readChanges("s1", 0, 10_000);
}

describe.each([
  ["sqlite", "postgres"],
  ["postgres", "sqlite"],
] as const)("%s primary, %s secondary", (primaryKind, secondaryKind) => {
  test("the log applies across backends: same rows, same checksum at every lsn", async () => {
    const primary = await open(primaryKind, "P");
    const secondary = await open(secondaryKind, "S");
    await workload(primary);
    const entries = await allEntries(primary);
    for (let index = 0; index < entries.length; index += 4) await secondary.applyChanges("s1", entries.slice(index, index + 4));
    for (const entry of entries) expect(await secondary.checksumAt("s1", entry.lsn)).toBe(entry.checksum);
    expect(await rows(secondary)).toEqual(await rows(primary));
    expect(await secondary.replicaState("s1")).toEqual(await primary.replicaState("s1"));
    expect((await secondary.verifyChecksum("s1")).ok).toBe(true);
    expect((await primary.verifyChecksum("s1")).ok).toBe(true);
    // The secondary's log feeds a third replica on the primary's backend unchanged.
    const third = await open(primaryKind, "T");
    await third.applyChanges("s1", await allEntries(secondary));
    expect(await third.replicaState("s1")).toEqual(await primary.replicaState("s1"));
  });

  test("a snapshot restores across backends and the tail applies on top", async () => {
    const primary = await open(primaryKind, "P");
    await workload(primary);
    const chunks: SnapshotChunk[] = [];
    for await (const chunk of primary.snapshot("s1")) chunks.push(chunk);
    await primary.executeAutocommit("s1", [{ sql: "DELETE FROM items WHERE id = 1", params: [] }]);
    const replica = await open(secondaryKind, "R");
    const { lsn } = await replica.restoreSnapshot("s1", chunks);
    await replica.applyChanges("s1", await primary.readChanges("s1", lsn));
    expect(await rows(replica)).toEqual(await rows(primary));
    expect((await replica.verifyChecksum("s1")).ok).toBe(true);
    expect((await replica.replicaState("s1")).checksum).toBe((await primary.replicaState("s1")).checksum);
  });
});
