import {
  DbError,
  openShardStore,
  type ChangeEntry,
  type RowChange,
  type ShardStore,
  type ShardStoreOptions,
  type SnapshotChunk,
  type SqlValue,
} from "@mycelium/db";
import { expectDbError, prepareInChildThenKill } from "./shard-store-behaviour";

/**
 * The replication half of the behaviour suite: change capture, the change log, applying it on a secondary,
 * checksums, snapshots, epoch fencing and adopted prepared transactions. Every backend must pass it.
 */
export interface ReplicationHarness {
  readonly kind: "sqlite" | "postgres";
  readonly blobType: string;
  freshOptions(overrides?: { nodeId?: string; changeCapture?: boolean }): Promise<ShardStoreOptions>;
  /** Runs one statement on the shard's database behind the store's back: no capture, no change-log entry. */
  tamper(options: ShardStoreOptions, shardId: string, sql: string): Promise<void>;
}

const itemsDdl = ["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER)"];

/** Rows of a table in key order, for comparing replicas. */
async function rowsOf(store: ShardStore, table: string, shardId = "s1"): Promise<SqlValue[][]> {
  return (await store.read(shardId, `SELECT * FROM ${table} ORDER BY 1`, [])).rows.map((row) =>
    row.map((value) => (value instanceof Uint8Array ? new Uint8Array(value) : value)),
  );
}

async function entriesAfter(store: ShardStore, afterLsn: number, shardId = "s1"): Promise<ChangeEntry[]> {
  const entries: ChangeEntry[] = [];
  for (;;) {
    const page = await store.readChanges(shardId, afterLsn + entries.length, 500);
    if (page.length === 0) return entries;
    entries.push(...page);
  }
}

function change(table: string, op: RowChange["op"], key: Record<string, SqlValue>, row: Record<string, SqlValue> | undefined, before: Record<string, SqlValue> | null): RowChange {
  return op === "upsert" ? { table, op, key, row: row!, before } : { table, op, key, before };
}

/** Applies `entries` to `secondary` in batches of `batch`, checking both replicas agree at every lsn. */
async function applyAndCompare(primary: ShardStore, secondary: ShardStore, entries: ChangeEntry[], batch = 3, shardId = "s1"): Promise<void> {
  for (let index = 0; index < entries.length; index += batch) {
    const slice = entries.slice(index, index + batch);
    const { appliedLsn } = await secondary.applyChanges(shardId, slice);
    expect(appliedLsn).toBe(slice[slice.length - 1]!.lsn);
  }
  for (const entry of entries) {
    const mine = await secondary.checksumAt(shardId, entry.lsn);
    expect({ lsn: entry.lsn, checksum: mine }).toEqual({ lsn: entry.lsn, checksum: entry.checksum });
    expect(await primary.checksumAt(shardId, entry.lsn)).toBe(entry.checksum);
  }
}

export function describeReplicationBehaviour(harness: () => ReplicationHarness): void {
  let h: ReplicationHarness;
  const open: ShardStore[] = [];
  let nodeCounter = 0;

  async function node(name = `node${++nodeCounter}`): Promise<{ store: ShardStore; options: ShardStoreOptions }> {
    const options = await h.freshOptions({ nodeId: name });
    const store = await openShardStore(options);
    open.push(store);
    await store.ensureShard("s1");
    return { store, options };
  }

  async function primaryWithItems(name = "P") {
    const opened = await node(name);
    await opened.store.applySchema("s1", itemsDdl);
    return opened;
  }

  beforeAll(() => {
    h = harness();
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
  });

  describe("change capture", () => {
    test("each committed write is one entry with exactly its net row changes", async () => {
      const { store } = await primaryWithItems();
      expect(await store.headLsn("s1")).toBe(1); // the schema change
      const write = (sql: string, params: SqlValue[] = []) => store.executeAutocommit("s1", [{ sql, params }]);

      await write("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2)");
      await write("UPDATE items SET qty = qty + 10");
      await write("INSERT INTO items (id, name, qty) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty", [1, "a", 5]);
      await write("DELETE FROM items WHERE id = 2");
      await write("UPDATE items SET id = 3 WHERE id = 1");
      // Nothing captured changed: no entry.
      await write("SELECT * FROM items");
      await write("UPDATE items SET qty = 0 WHERE id = 42");
      const tx = await store.begin("s1", "tx-net-nothing");
      await tx.execute("INSERT INTO items (id, name, qty) VALUES (4, 'd', 4)");
      await tx.execute("UPDATE items SET qty = 44 WHERE id = 4");
      await tx.execute("DELETE FROM items WHERE id = 4");
      await tx.commit();
      const collapsed = await store.begin("s1", "tx-collapsed");
      await collapsed.execute("INSERT INTO items (id, name, qty) VALUES (5, 'e', 5)");
      await collapsed.execute("UPDATE items SET qty = 55 WHERE id = 5");
      await collapsed.commit();

      const entries = await entriesAfter(store, 1);
      expect(entries.map((entry) => entry.lsn)).toEqual([2, 3, 4, 5, 6, 7]);
      expect(entries.map((entry) => [entry.txId, entry.origin, entry.originSeq])).toEqual([
        [null, "P", 2],
        [null, "P", 3],
        [null, "P", 4],
        [null, "P", 5],
        [null, "P", 6],
        ["tx-collapsed", "P", 7],
      ]);
      const a1 = { id: 1, name: "a", qty: 1 };
      const b2 = { id: 2, name: "b", qty: 2 };
      expect(entries.map((entry) => entry.changes)).toEqual([
        [change("items", "upsert", { id: 1 }, a1, null), change("items", "upsert", { id: 2 }, b2, null)],
        [
          change("items", "upsert", { id: 1 }, { ...a1, qty: 11 }, a1),
          change("items", "upsert", { id: 2 }, { ...b2, qty: 12 }, b2),
        ],
        [change("items", "upsert", { id: 1 }, { ...a1, qty: 5 }, { ...a1, qty: 11 })],
        [change("items", "delete", { id: 2 }, undefined, { ...b2, qty: 12 })],
        [change("items", "delete", { id: 1 }, undefined, { ...a1, qty: 5 }), change("items", "upsert", { id: 3 }, { id: 3, name: "a", qty: 5 }, null)],
        [change("items", "upsert", { id: 5 }, { id: 5, name: "e", qty: 55 }, null)],
      ]);
      for (const entry of entries) {
        expect(entry.epoch).toBe(0);
        expect(entry.checksum).toMatch(/^[0-9a-f]{32}$/);
        expect(entry.committedAtMs).toBeGreaterThan(0);
      }
    });

    test("rolled-back, failed and aborted transactions leave no entry; a prepared one gets its entry at commit", async () => {
      const { store } = await primaryWithItems();
      const head = await store.headLsn("s1");
      const rolledBack = await store.begin("s1", "tx-rb");
      await rolledBack.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)");
      await rolledBack.rollback();
      await expectDbError(
        store.executeAutocommit("s1", [
          { sql: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", params: [] },
          { sql: "INSERT INTO items (id, name, qty) VALUES (2, 'a', 1)", params: [] },
        ]),
        "CONSTRAINT",
      );
      const aborted = await store.begin("s1", "tx-abort");
      await aborted.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)");
      await aborted.prepare();
      await store.abortPrepared("s1", "tx-abort");
      expect(await store.headLsn("s1")).toBe(head);

      const prepared = await store.begin("s1", "tx-2pc");
      await prepared.execute("INSERT INTO items (id, name, qty) VALUES (7, 'g', 7)");
      await prepared.prepare();
      expect(await store.headLsn("s1")).toBe(head); // not before the decision
      await store.commitPrepared("s1", "tx-2pc");
      await store.commitPrepared("s1", "tx-2pc"); // a retried commit logs nothing twice
      const entries = await entriesAfter(store, head);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ lsn: head + 1, txId: "tx-2pc", origin: "P" });
      expect(entries[0]!.changes).toEqual([change("items", "upsert", { id: 7 }, { id: 7, name: "g", qty: 7 }, null)]);

      // A prepared transaction that changed nothing still gets an entry: replicas learn its txId.
      const empty = await store.begin("s1", "tx-2pc-empty");
      await empty.execute("UPDATE items SET qty = 0 WHERE id = 999");
      await empty.prepare();
      await empty.commit();
      const last = await entriesAfter(store, head + 1);
      expect(last.map((entry) => [entry.txId, entry.changes])).toEqual([["tx-2pc-empty", []]]);
    });

    test("concurrent autocommits (group-committed on SQLite) each get their own entry, gapless", async () => {
      const { store } = await primaryWithItems();
      const head = await store.headLsn("s1");
      const batchesBefore = store.stats().groupCommits.batches;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) =>
          store.executeAutocommit("s1", [
            { sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", params: [100 + index, index === 9 ? "dup" : `n${index}`, index] },
            ...(index === 3 || index === 9 ? [{ sql: "INSERT INTO items (id, name, qty) VALUES (?, 'dup', 0)", params: [200 + index] }] : []),
          ]),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.status === "rejected")).toHaveLength(1); // request 9: 'dup' twice
      const entries = await entriesAfter(store, head);
      expect(entries.map((entry) => entry.lsn)).toEqual(Array.from({ length: 19 }, (_, index) => head + 1 + index));
      expect(entries.map((entry) => entry.originSeq)).toEqual(Array.from({ length: 19 }, (_, index) => head + 1 + index));
      expect(entries.every((entry) => entry.txId === null)).toBe(true);
      const keys = entries.flatMap((entry) => entry.changes.map((one) => one.key.id));
      expect(new Set(keys).size).toBe(20); // 18 single-row requests + request 3 with two rows
      expect(keys).not.toContain(109);
      if (h.kind === "sqlite") expect(store.stats().groupCommits.batches - batchesBefore).toBeLessThan(5);
      expect(store.stats().changeLog.entriesWritten).toBeGreaterThanOrEqual(20);
    });

    test("applySchema refuses tables without a primary key and triggers; ALTER TABLE re-creates capture", async () => {
      const { store } = await primaryWithItems();
      const error = await expectDbError(store.applySchema("s1", ["CREATE TABLE loose (a INTEGER, b TEXT)"]), "INVALID_ARGUMENT");
      expect(error.message).toMatch(/PRIMARY KEY/);
      await expectDbError(store.read("s1", "SELECT * FROM loose", []), "NO_SUCH_TABLE");
      await expectDbError(
        store.applySchema("s1", [h.kind === "sqlite" ? "CREATE TRIGGER t AFTER INSERT ON items BEGIN SELECT 1; END" : "CREATE TRIGGER t AFTER INSERT ON items EXECUTE FUNCTION f()"]),
        "INVALID_ARGUMENT",
      );
      await store.applySchema("s1", ["ALTER TABLE items ADD COLUMN note TEXT"]);
      const head = await store.headLsn("s1");
      await store.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty, note) VALUES (1, 'a', 1, 'hi')", params: [] }]);
      const [entry] = await entriesAfter(store, head);
      expect(entry!.changes).toEqual([change("items", "upsert", { id: 1 }, { id: 1, name: "a", qty: 1, note: "hi" }, null)]);
      const ddl = (await entriesAfter(store, 0)).filter((one) => one.ddl).map((one) => one.ddl);
      expect(ddl).toEqual([itemsDdl, ["ALTER TABLE items ADD COLUMN note TEXT"]]);
    });

    test("the log survives a restart and continues where it was", async () => {
      const { store, options } = await primaryWithItems();
      await store.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", params: [] }]);
      const before = await store.replicaState("s1");
      await store.close();
      const again = await openShardStore(options);
      open.push(again);
      expect(await again.replicaState("s1")).toEqual(before);
      await again.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (2, 'b', 2)", params: [] }]);
      const [entry] = await entriesAfter(again, before.appliedLsn);
      expect(entry).toMatchObject({ lsn: before.appliedLsn + 1, origin: "P", originSeq: before.versionVector.P! + 1 });
      expect((await again.verifyChecksum("s1")).ok).toBe(true);
    });

    test("a prepared transaction redone after a crash gets its entry when it commits", async () => {
      const { store, options } = await primaryWithItems();
      await store.close();
      await prepareInChildThenKill(options, "s1", "tx-crash", [{ sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", params: [8, "h", 8] }]);
      const again = await openShardStore(options);
      open.push(again);
      const head = await again.headLsn("s1");
      await again.commitPrepared("s1", "tx-crash");
      const entries = await entriesAfter(again, head);
      expect(entries.map((entry) => [entry.txId, entry.changes])).toEqual([
        ["tx-crash", [change("items", "upsert", { id: 8 }, { id: 8, name: "h", qty: 8 }, null)]],
      ]);
      expect((await again.verifyChecksum("s1")).ok).toBe(true);
    });
  });

  describe("reading the log", () => {
    test("waitForChanges wakes on commit, times out, aborts; truncation makes old entries a gap", async () => {
      const { store } = await primaryWithItems();
      const head = await store.headLsn("s1");
      expect(await store.waitForChanges("s1", head - 1, 10)).toBe(true);
      const started = Date.now();
      const woken = store.waitForChanges("s1", head, 10_000);
      setTimeout(() => void store.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", params: [] }]), 20);
      expect(await woken).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await store.waitForChanges("s1", head + 1, 30)).toBe(false);
      const controller = new AbortController();
      const aborted = store.waitForChanges("s1", head + 1, 10_000, controller.signal);
      controller.abort();
      expect(await aborted).toBe(false);
      expect(store.stats().changeLog.waiters).toBe(0);

      for (let index = 2; index <= 4; index += 1) {
        await store.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", params: [index, `n${index}`, index] }]);
      }
      const last = await store.headLsn("s1");
      expect((await store.readChanges("s1", 0, 2)).map((entry) => entry.lsn)).toEqual([1, 2]);
      const atLast = await store.checksumAt("s1", last - 1);
      expect(await store.truncateChanges("s1", last - 1)).toBe(last - 1);
      expect(await store.truncateChanges("s1", last - 1)).toBe(0);
      await expectDbError(store.readChanges("s1", 0), "REPLICATION_GAP");
      expect((await store.readChanges("s1", last - 1)).map((entry) => entry.lsn)).toEqual([last]);
      expect(await store.checksumAt("s1", 1)).toBeNull();
      expect(await store.checksumAt("s1", last - 1)).toBeNull();
      expect(atLast).toMatch(/^[0-9a-f]{32}$/);
      expect((await store.replicaState("s1")).truncatedLsn).toBe(last - 1);
      expect(await store.checksumAt("s1", last + 5)).toBeNull();
    });
  });

  describe("applying on a secondary", () => {
    async function workload(store: ShardStore): Promise<void> {
      await store.applySchema("s1", [
        `CREATE TABLE kinds (id BIGINT PRIMARY KEY, big BIGINT, bytes ${h.blobType}, real_value DOUBLE PRECISION, label TEXT)`,
      ]);
      const bytes = new Uint8Array([0, 1, 2, 250, 255]);
      await store.executeAutocommit("s1", [
        { sql: "INSERT INTO kinds (id, big, bytes, real_value, label) VALUES (?, ?, ?, ?, ?)", params: [2n ** 62n, -(2n ** 63n), bytes, 0.1, "ünï ☃"] },
        { sql: "INSERT INTO kinds (id, big, bytes, real_value, label) VALUES (?, ?, ?, ?, ?)", params: [1, 2n ** 53n + 1n, null, -1e-300, null] },
        { sql: "INSERT INTO kinds (id, big, bytes, real_value, label) VALUES (?, ?, ?, ?, ?)", params: [2, null, new Uint8Array(0), 1 / 3, ""] },
      ]);
      await Promise.all(
        Array.from({ length: 12 }, (_, index) =>
          store.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", params: [index, `n${index}`, index] }]),
        ),
      );
      const tx = await store.begin("s1", "tx-mixed");
      await tx.execute("UPDATE items SET qty = qty * 2 WHERE id < 6");
      await tx.execute("DELETE FROM items WHERE id = 11");
      await tx.execute("UPDATE kinds SET big = big + 1 WHERE id = ?", [2n ** 62n]);
      await tx.prepare();
      await tx.commit();
      // A unique value moves from one row to another inside one transaction.
      const swap = await store.begin("s1", "tx-swap");
      await swap.execute("UPDATE items SET name = 'tmp' WHERE id = 1");
      await swap.execute("UPDATE items SET name = 'n1' WHERE id = 2");
      await swap.execute("UPDATE items SET name = 'n2' WHERE id = 1");
      await swap.commit();
      await store.applySchema("s1", ["ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'x'"]);
      await store.executeAutocommit("s1", [{ sql: "UPDATE items SET note = 'y' WHERE id = 3", params: [] }]);
    }

    test("a secondary that applies the log has the same rows and the same checksum at every lsn", async () => {
      const { store: primary } = await primaryWithItems();
      const { store: secondary } = await node("S");
      await workload(primary);
      const entries = await entriesAfter(primary, 0);
      await applyAndCompare(primary, secondary, entries);
      expect(await rowsOf(secondary, "items")).toEqual(await rowsOf(primary, "items"));
      expect(await rowsOf(secondary, "kinds")).toEqual(await rowsOf(primary, "kinds"));
      const [big] = await rowsOf(secondary, "kinds").then((rows) => rows.filter((row) => row[0] === 2n ** 62n));
      expect(big).toEqual([2n ** 62n, -(2n ** 63n) + 1n, new Uint8Array([0, 1, 2, 250, 255]), 0.1, "ünï ☃"]);
      expect(await secondary.replicaState("s1")).toEqual(await primary.replicaState("s1"));
      expect((await secondary.verifyChecksum("s1")).ok).toBe(true);
      expect((await primary.verifyChecksum("s1")).ok).toBe(true);
      // The secondary's log is the primary's, verbatim.
      expect(await entriesAfter(secondary, 0)).toEqual(entries);
      expect(secondary.stats().changeLog.entriesApplied).toBe(entries.length);
    });

    test("re-applying is a no-op; a gap, another entry at an applied lsn and a wrong checksum are refused", async () => {
      const { store: primary } = await primaryWithItems();
      const { store: secondary } = await node("S");
      await workload(primary);
      const entries = await entriesAfter(primary, 0);
      const half = Math.floor(entries.length / 2);
      await secondary.applyChanges("s1", entries.slice(0, half));
      const state = await secondary.replicaState("s1");
      expect(await secondary.applyChanges("s1", entries.slice(0, half))).toEqual({ appliedLsn: half });
      expect(await secondary.replicaState("s1")).toEqual(state);
      await expectDbError(secondary.applyChanges("s1", entries.slice(half + 1)), "REPLICATION_GAP");
      await expectDbError(secondary.applyChanges("s1", [entries[0]!, entries[2]!]), "REPLICATION_GAP");
      await expectDbError(secondary.applyChanges("s1", [{ ...entries[half - 1]!, origin: "Z" }]), "REPLICA_DIVERGED");
      const forged = { ...entries[half]!, checksum: "0".repeat(32) };
      await expectDbError(secondary.applyChanges("s1", [forged]), "REPLICA_DIVERGED");
      expect(await secondary.replicaState("s1")).toEqual(state); // nothing of a refused batch stayed
      // Overlapping batches: the applied part is skipped, the rest applies.
      expect(await secondary.applyChanges("s1", entries.slice(half - 2))).toEqual({ appliedLsn: entries.length });
      expect(await secondary.replicaState("s1")).toEqual(await primary.replicaState("s1"));
    });

    test("a promoted secondary continues the same log, and the old primary can follow it", async () => {
      const { store: primary } = await primaryWithItems("P");
      const { store: secondary } = await node("S");
      await workload(primary);
      await secondary.applyChanges("s1", await entriesAfter(primary, 0));
      const head = await secondary.headLsn("s1");
      await secondary.setShardEpoch("s1", 1);
      await secondary.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (50, 'new', 1)", params: [] }], { epoch: 1 });
      const [next] = await entriesAfter(secondary, head);
      expect(next).toMatchObject({ lsn: head + 1, origin: "S", originSeq: 1, epoch: 1 });
      await primary.applyChanges("s1", [next!]);
      const state = await primary.replicaState("s1");
      expect(state).toEqual(await secondary.replicaState("s1"));
      expect(state.versionVector).toEqual({ P: head, S: 1 });
      expect(state.epoch).toBe(1);
    });

    test("concurrent autocommits and 2PC transactions on the same rows replay to the same state", async () => {
      const { store: primary } = await primaryWithItems();
      const { store: secondary } = await node("S");
      await primary.executeAutocommit(
        "s1",
        Array.from({ length: 5 }, (_, index) => ({ sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, 0)", params: [index, `n${index}`] })),
      );
      let txCounter = 0;
      let next = 0;
      const operation = async (index: number) => {
        const id = index % 5;
        for (let attempt = 0; ; attempt += 1) {
          try {
            if (index % 3 === 0) {
              const tx = await primary.begin("s1", `tx-c${++txCounter}`);
              try {
                await tx.execute("UPDATE items SET qty = qty + 1 WHERE id = ?", [id]);
                await tx.execute("UPDATE items SET qty = qty + 10 WHERE id = ?", [(id + 1) % 5]);
                await tx.prepare();
              } catch (error) {
                await tx.rollback();
                throw error;
              }
              // (a coordinator decides after every participant voted; here, after a moment)
              await new Promise((resolve) => setTimeout(resolve, index % 4));
              await tx.commit();
            } else {
              await primary.executeAutocommit("s1", [{ sql: "UPDATE items SET qty = qty + 100 WHERE id = ?", params: [id] }]);
            }
            return;
          } catch (error) {
            // PostgreSQL: two writers may deadlock on two rows; one is told BUSY and retries.
            if (!(error instanceof DbError) || !error.retryable || attempt > 20) throw error;
          }
        }
      };
      // Six writers (fewer than the PostgreSQL pool's connections) run sixty operations between them.
      const work = Array.from({ length: 6 }, async () => {
        for (let index = next++; index < 60; index = next++) await operation(index);
      });
      await Promise.all(work);
      const entries = await entriesAfter(primary, 0);
      expect(entries.map((entry) => entry.lsn)).toEqual(entries.map((_, index) => index + 1));
      await applyAndCompare(primary, secondary, entries, 7);
      expect(await rowsOf(secondary, "items")).toEqual(await rowsOf(primary, "items"));
      const total = (await rowsOf(primary, "items")).reduce((sum, row) => sum + Number(row[2]), 0);
      expect(total).toBe(20 * 11 + 40 * 100);
      expect((await primary.verifyChecksum("s1")).ok).toBe(true);
      expect((await secondary.verifyChecksum("s1")).ok).toBe(true);
    });

    test("a row changed behind the log's back shows up as a checksum mismatch", async () => {
      const { store: primary } = await primaryWithItems();
      const { store: secondary, options } = await node("S");
      await workload(primary);
      await secondary.applyChanges("s1", await entriesAfter(primary, 0));
      expect((await secondary.verifyChecksum("s1")).ok).toBe(true);
      await h.tamper(options, "s1", "UPDATE items SET qty = 999 WHERE id = 4");
      const verification = await secondary.verifyChecksum("s1");
      expect(verification.ok).toBe(false);
      expect(verification.incremental).toBe((await primary.replicaState("s1")).checksum);
      expect(verification.scanned).not.toBe(verification.incremental);
    });
  });

  describe("snapshots", () => {
    test("snapshot + restore + the log's tail gives an identical replica while writes continue", async () => {
      const { store: primary } = await primaryWithItems();
      await primary.applySchema("s1", [`CREATE TABLE blobs (id INTEGER PRIMARY KEY, data ${h.blobType})`]);
      for (let start = 0; start < 2500; start += 500) {
        await primary.executeAutocommit(
          "s1",
          Array.from({ length: 500 }, (_, index) => ({
            sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)",
            params: [start + index, `item-${start + index}`, start + index],
          })),
        );
      }
      const blob = new Uint8Array(300_000).map((_, index) => index % 251);
      for (let index = 0; index < 8; index += 1) {
        await primary.executeAutocommit("s1", [{ sql: "INSERT INTO blobs (id, data) VALUES (?, ?)", params: [index, blob] }]);
      }

      const chunks: SnapshotChunk[] = [];
      let wrote = false;
      for await (const chunk of primary.snapshot("s1")) {
        chunks.push(chunk);
        if (chunk.kind === "rows" && !wrote) {
          wrote = true;
          // Writes during the snapshot: they are not in it, they come with the tail.
          await primary.executeAutocommit("s1", [{ sql: "DELETE FROM items WHERE id < 100", params: [] }]);
          await primary.executeAutocommit("s1", [{ sql: "UPDATE items SET qty = -1 WHERE id >= 2000", params: [] }]);
          const tx = await primary.begin("s1", "tx-during");
          await tx.execute("INSERT INTO items (id, name, qty) VALUES (9000, 'late', 1)");
          await tx.prepare();
          await tx.commit();
        }
      }
      const begin = chunks[0]!;
      expect(begin.kind).toBe("begin");
      expect(chunks[chunks.length - 1]).toMatchObject({ kind: "end", rowCount: 2508 });
      for (const chunk of chunks) {
        if (chunk.kind !== "rows") continue;
        expect(chunk.rows.length).toBeLessThanOrEqual(1000);
        const bytes = chunk.rows.reduce((sum, row) => sum + row.reduce<number>((inner, value) => inner + (value instanceof Uint8Array ? value.byteLength : 16), 0), 0);
        expect(bytes).toBeLessThanOrEqual(1024 * 1024 + 300_000);
      }

      const { store: replica } = await node("R");
      // Through the wire codec, as the node-agent would ship it.
      const { encodeSnapshotChunk, decodeSnapshotChunk } = await import("@mycelium/db");
      const { lsn } = await replica.restoreSnapshot("s1", chunks.map((chunk) => decodeSnapshotChunk(encodeSnapshotChunk(chunk))));
      expect(lsn).toBe((begin as Extract<SnapshotChunk, { kind: "begin" }>).lsn);
      expect((await replica.verifyChecksum("s1")).ok).toBe(true);
      const tail = await entriesAfter(primary, lsn);
      expect(tail.length).toBe(3);
      await applyAndCompare(primary, replica, tail, 1);
      expect(await rowsOf(replica, "items")).toEqual(await rowsOf(primary, "items"));
      expect(await rowsOf(replica, "blobs")).toEqual(await rowsOf(primary, "blobs"));
      expect(await replica.replicaState("s1")).toEqual({ ...(await primary.replicaState("s1")), truncatedLsn: lsn });
      // The restored replica has the markers: a retried commit of a transaction it never ran is recognised.
      await replica.commitPrepared("s1", "tx-during");
    });

    test("a restore replaces what the shard held, atomically", async () => {
      const { store: primary } = await primaryWithItems();
      await primary.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", params: [] }]);
      const chunks: SnapshotChunk[] = [];
      for await (const chunk of primary.snapshot("s1")) chunks.push(chunk);
      const { store: replica } = await node("R");
      await replica.applySchema("s1", ["CREATE TABLE other (k TEXT PRIMARY KEY)", ...itemsDdl]);
      await replica.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (5, 'mine', 5)", params: [] }]);
      const before = await replica.replicaState("s1");
      // A broken stream (no end chunk) changes nothing.
      await expectDbError(replica.restoreSnapshot("s1", chunks.slice(0, -1)), "INVALID_ARGUMENT");
      expect(await replica.replicaState("s1")).toEqual(before);
      expect(await rowsOf(replica, "items")).toEqual([[5, "mine", 5]]);
      // A snapshot whose rows do not add up to its checksum is refused.
      await expectDbError(replica.restoreSnapshot("s1", [{ ...(chunks[0] as object), checksum: "f".repeat(32) } as SnapshotChunk, ...chunks.slice(1)]), "REPLICA_DIVERGED");
      await replica.restoreSnapshot("s1", chunks);
      expect(await rowsOf(replica, "items")).toEqual([[1, "a", 1]]);
      await expectDbError(replica.read("s1", "SELECT * FROM other", []), "NO_SUCH_TABLE");
      expect((await replica.replicaState("s1")).versionVector).toEqual({ P: 2 });
    });
  });

  describe("epoch fencing", () => {
    test("writes under an epoch lower than the shard's fail with STALE_EPOCH", async () => {
      const { store } = await primaryWithItems();
      await store.setShardEpoch("s1", 2);
      await store.setShardEpoch("s1", 2);
      await expectDbError(store.setShardEpoch("s1", 1), "STALE_EPOCH");
      const insert = (id: number) => ({ sql: "INSERT INTO items (id, name, qty) VALUES (?, ?, 1)", params: [id, `n${id}`] });
      const stale = await expectDbError(store.executeAutocommit("s1", [insert(1)], { epoch: 1 }), "STALE_EPOCH");
      expect(stale.retryable).toBe(false);
      await store.executeAutocommit("s1", [insert(2)], { epoch: 2 });
      await store.executeAutocommit("s1", [insert(3)]); // no precondition: not fenced
      await expectDbError(store.begin("s1", "tx-old", { epoch: 1 }), "STALE_EPOCH");
      await expectDbError(store.applySchema("s1", ["CREATE TABLE x (id INTEGER PRIMARY KEY)"], { epoch: 1 }), "STALE_EPOCH");

      // A promotion recorded while a transaction is open: it cannot commit, nor prepare.
      const open1 = await store.begin("s1", "tx-open1", { epoch: 2 });
      await open1.execute("INSERT INTO items (id, name, qty) VALUES (4, 'n4', 1)");
      const open2Promise = store.begin("s1", "tx-open2", { epoch: 2 });
      await store.setShardEpoch("s1", 3);
      await expectDbError(open1.commit(), "STALE_EPOCH");
      expect(open1.state).toBe("rolled_back");
      const open2 = await open2Promise.catch((error: DbError) => error);
      if (!(open2 instanceof DbError)) {
        await open2.execute("INSERT INTO items (id, name, qty) VALUES (5, 'n5', 1)");
        await expectDbError(open2.prepare(), "STALE_EPOCH");
      } else {
        expect(open2.code).toBe("STALE_EPOCH");
      }
      expect(await store.recoverPrepared()).toEqual([]);
      expect(await rowsOf(store, "items")).toEqual([
        [2, "n2", 1],
        [3, "n3", 1],
      ]);
      const entries = await entriesAfter(store, 1);
      expect(entries.map((entry) => entry.epoch)).toEqual([2, 2]);
      expect((await store.replicaState("s1")).epoch).toBe(3);
    });
  });

  describe("adopted prepared transactions", () => {
    test("a secondary adopts a prepared redo; after the primary dies, activation re-executes it", async () => {
      const { store: primary } = await primaryWithItems("P");
      const { store: secondary } = await node("S");
      await primary.executeAutocommit("s1", [{ sql: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)", params: [] }]);
      await secondary.applyChanges("s1", await entriesAfter(primary, 0));

      const tx = await primary.begin("s1", "tx-adopt");
      await tx.execute("UPDATE items SET qty = qty + 100 WHERE id = 1");
      await tx.execute("INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", [2, "b", 2]);
      await tx.prepare();
      await secondary.adoptPrepared("s1", "tx-adopt", tx.statements, { minAppliedLsn: await primary.headLsn("s1") });
      await secondary.adoptPrepared("s1", "tx-adopt", tx.statements); // idempotent
      expect((await secondary.listAdopted("s1")).map((adopted) => adopted.txId)).toEqual(["tx-adopt"]);
      expect(await rowsOf(secondary, "items")).toEqual([[1, "a", 1]]); // adopted, not executed
      await primary.close(); // the primary dies with the transaction prepared

      const activation = await secondary.activatePrepared("s1");
      expect(activation).toEqual({ activated: ["tx-adopt"], skipped: [], waiting: [] });
      expect((await secondary.recoverPrepared()).map((prepared) => prepared.txId)).toEqual(["tx-adopt"]);
      expect(await rowsOf(secondary, "items")).toEqual([[1, "a", 1]]); // held, invisible until decided
      expect(await secondary.listAdopted("s1")).toEqual([]);
      const head = await secondary.headLsn("s1");
      await secondary.commitPrepared("s1", "tx-adopt");
      expect(await rowsOf(secondary, "items")).toEqual([
        [1, "a", 101],
        [2, "b", 2],
      ]);
      const [entry] = await entriesAfter(secondary, head);
      expect(entry).toMatchObject({ txId: "tx-adopt", origin: "S" });
      expect((await secondary.verifyChecksum("s1")).ok).toBe(true);
    });

    test("activation skips a transaction whose entry already arrived; applying it forgets the adoption", async () => {
      const { store: primary } = await primaryWithItems("P");
      const { store: secondary } = await node("S");
      const tx = await primary.begin("s1", "tx-done");
      await tx.execute("INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)");
      await tx.prepare();
      await secondary.adoptPrepared("s1", "tx-done", tx.statements);
      await tx.commit();
      await secondary.applyChanges("s1", await entriesAfter(primary, 0));
      expect(await secondary.listAdopted("s1")).toEqual([]); // its entry arrived
      // An adoption that comes late (after the entry) is skipped at activation: the effects are here already.
      await secondary.adoptPrepared("s1", "tx-done", tx.statements);
      expect(await secondary.activatePrepared("s1")).toEqual({ activated: [], skipped: ["tx-done"], waiting: [] });
      expect(await rowsOf(secondary, "items")).toEqual([[1, "a", 1]]);
      // The retried commit on the new primary is recognised through the replicated marker.
      await secondary.commitPrepared("s1", "tx-done");
      // An adoption the primary aborted is discarded; one that needs entries this replica lacks is refused.
      await secondary.adoptPrepared("s1", "tx-gone", [{ sql: "DELETE FROM items", params: [] }]);
      await secondary.discardAdopted("s1", "tx-gone");
      await secondary.adoptPrepared("s1", "tx-ahead", [{ sql: "DELETE FROM items", params: [] }], { minAppliedLsn: 99 });
      await expectDbError(secondary.activatePrepared("s1"), "REPLICATION_GAP");
      expect(await rowsOf(secondary, "items")).toEqual([[1, "a", 1]]);
    });
  });
}
