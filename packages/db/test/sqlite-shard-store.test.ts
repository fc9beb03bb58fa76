import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { encodeStatements, openShardStore, type ShardStore } from "@mycelium/db";
import { describeReplicationBehaviour } from "./support/replication-behaviour";
import { describeShardStoreBehaviour, expectDbError } from "./support/shard-store-behaviour";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-db-sqlite-"));
let counter = 0;

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe("SQLite shard store", () => {
  describeShardStoreBehaviour(() => ({
    kind: "sqlite",
    blobType: "BLOB",
    freshOptions: async (overrides = {}) => ({
      kind: "sqlite",
      dataDir: path.join(root, `node-${++counter}`),
      ...overrides,
    }),
  }));

  describeReplicationBehaviour(() => ({
    kind: "sqlite",
    blobType: "BLOB",
    freshOptions: async (overrides = {}) => ({ kind: "sqlite", dataDir: path.join(root, `node-${++counter}`), ...overrides }),
    // An operator's sqlite3 shell: without the store's capture function the triggers cannot run, so the
    // tamperer stubs it — exactly the kind of write the checksum must catch.
    tamper: async (options, shardId, sql) => {
      const db = new Database(path.join((options as { dataDir: string }).dataDir, "shards", `${shardId}.db`));
      try {
        db.function("_myc_capture", { varargs: true }, () => null);
        db.prepare(sql).run();
      } finally {
        db.close();
      }
    },
  }));

  describe("SQLite specifics", () => {
    const stores: ShardStore[] = [];
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
    });

    async function open(extra: Record<string, unknown> = {}) {
      const dataDir = path.join(root, `node-${++counter}`);
      const store = await openShardStore({ kind: "sqlite", dataDir, ...extra });
      stores.push(store);
      await store.ensureShard("s1");
      await store.applySchema("s1", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"]);
      return { store, dataDir };
    }

    test("layout: one WAL-mode file per shard and the node database with the participant log", async () => {
      const { dataDir } = await open();
      expect(fs.existsSync(path.join(dataDir, "shards", "s1.db"))).toBe(true);
      expect(fs.existsSync(path.join(dataDir, "node.db"))).toBe(true);
      const db = new Database(path.join(dataDir, "shards", "s1.db"), { readonly: true });
      try {
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      } finally {
        db.close();
      }
    });

    test("autocommits issued together share one group commit (one transaction, one fsync)", async () => {
      const { store } = await open();
      const before = store.stats().groupCommits;
      await Promise.all(
        Array.from({ length: 32 }, (_, index) =>
          store.executeAutocommit("s1", [{ sql: "INSERT INTO kv (k, v) VALUES (?, ?)", params: [`k${index}`, "v"] }]),
        ),
      );
      const after = store.stats().groupCommits;
      expect(after.requests - before.requests).toBe(32);
      expect(after.batches - before.batches).toBe(1);
    });

    test("the write-lock queue is bounded: beyond maxLockWaiters writers get BUSY", async () => {
      const { store } = await open({ maxLockWaiters: 1, lockWaitTimeoutMs: 60_000 });
      const holder = await store.begin("s1", "holder");
      const queued = store.begin("s1", "queued");
      await expectDbError(store.begin("s1", "rejected"), "BUSY");
      await holder.rollback();
      await (await queued).rollback();
    });

    test("prepares issued together share one participant-log commit", async () => {
      const { store } = await open();
      for (const shard of ["a", "b", "c"]) {
        await store.ensureShard(shard);
        await store.applySchema(shard, ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"]);
      }
      const transactions = await Promise.all(["a", "b", "c"].map((shard) => store.begin(shard, "tx-group")));
      for (const tx of transactions) await tx.execute("INSERT INTO kv (k, v) VALUES ('x', 'y')", []);
      await Promise.all(transactions.map((tx) => tx.prepare()));
      expect((await store.recoverPrepared()).map((entry) => entry.shardId)).toEqual(["a", "b", "c"]);
      for (const tx of transactions) await tx.commit();
      for (const shard of ["a", "b", "c"]) {
        expect((await store.read(shard, "SELECT k, v FROM kv", [])).rows).toEqual([["x", "y"]]);
      }
    });

    // What a crash can leave behind in the participant log, written by hand (white-box): the deletion of a
    // resolved entry is not fsynced, so after a power loss the entry can come back.
    function plantLogEntry(dataDir: string, txId: string, shardId: string, statements: Array<{ sql: string; params: [] }>) {
      const db = new Database(path.join(dataDir, "node.db"));
      try {
        db.prepare("INSERT INTO participant_log (tx_id, shard_id, statements, prepared_at_ms) VALUES (?, ?, ?, ?)").run(
          txId,
          shardId,
          encodeStatements(statements),
          Date.now(),
        );
      } finally {
        db.close();
      }
    }

    test("a resurrected log entry of a committed transaction is dropped, not redone", async () => {
      const { store, dataDir } = await open();
      await store.executeAutocommit("s1", [{ sql: "INSERT INTO kv (k, v) VALUES ('n', '0')", params: [] }]);
      const statements: Array<{ sql: string; params: [] }> = [{ sql: "UPDATE kv SET v = v + 1 WHERE k = 'n'", params: [] }];
      const tx = await store.begin("s1", "tx-done");
      await tx.execute(statements[0]!.sql, []);
      await tx.prepare();
      await tx.commit();
      await store.close();
      plantLogEntry(dataDir, "tx-done", "s1", statements);
      const again = await openShardStore({ kind: "sqlite", dataDir });
      stores.push(again);
      expect(await again.recoverPrepared()).toEqual([]);
      expect((await again.read("s1", "SELECT v FROM kv WHERE k = 'n'", [])).rows).toEqual([["1"]]); // not "2"
      await again.commitPrepared("s1", "tx-done");
    });

    test("a resurrected log entry of an aborted transaction is redone and held until the decision (presumed abort)", async () => {
      const { store, dataDir } = await open();
      await store.close();
      plantLogEntry(dataDir, "tx-lost", "s1", [{ sql: "INSERT INTO kv (k, v) VALUES ('ghost', 'x')", params: [] }]);
      const again = await openShardStore({ kind: "sqlite", dataDir });
      stores.push(again);
      expect((await again.recoverPrepared()).map((entry) => entry.txId)).toEqual(["tx-lost"]);
      expect((await again.read("s1", "SELECT count(*) FROM kv", [])).rows).toEqual([[0]]);
      await again.abortPrepared("s1", "tx-lost");
      expect((await again.read("s1", "SELECT count(*) FROM kv", [])).rows).toEqual([[0]]);
      expect(await again.recoverPrepared()).toEqual([]);
    });

    test("options are validated", async () => {
      await expectDbError(openShardStore({ kind: "sqlite", dataDir: root, synchronous: "OFF" as never }), "CONFIG");
      await expectDbError(openShardStore({ kind: "sqlite", dataDir: root, lockWaitTimeoutMs: 0 }), "CONFIG");
      await expectDbError(openShardStore({ kind: "bogus" } as never), "CONFIG");
    });
  });
});
