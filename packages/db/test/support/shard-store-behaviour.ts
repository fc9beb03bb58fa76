import { spawn } from "node:child_process";
import * as path from "node:path";
import {
  DbError,
  encodeStatements,
  openShardStore,
  type DbErrorCode,
  type LocalTransaction,
  type ShardStore,
  type ShardStoreOptions,
  type SqlValue,
  type StatementResult,
} from "@mycelium/db";

/**
 * One behaviour suite for every ShardStore backend. A backend's test file calls this with a harness that hands
 * out options for a fresh, empty store location; everything below must hold on every backend.
 */
export interface ShardStoreHarness {
  readonly kind: "sqlite" | "postgres";
  /** Options for a store at a new, empty location (a data dir, a database). Reopen with the same options. */
  freshOptions(overrides?: { lockWaitTimeoutMs?: number; statementCacheSize?: number; nodeId?: string; changeCapture?: boolean }): Promise<ShardStoreOptions>;
  /** Column type for bytes. */
  readonly blobType: string;
}

/** Per-backend expected values where the backends legitimately differ. */
type PerBackend<T> = { sqlite: T; postgres: T };

export async function expectDbError(promise: Promise<unknown>, code: DbErrorCode): Promise<DbError> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof DbError)) throw new Error(`expected DbError ${code}, got ${String(error)}`);
    if (error.code !== code) throw new Error(`expected DbError ${code}, got ${error.code}: ${error.message}`);
    return error;
  }
  throw new Error(`expected DbError ${code}, but it succeeded`);
}

const accountsDdl = [
  "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL UNIQUE, balance BIGINT NOT NULL)",
  "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
];

function values(result: StatementResult): SqlValue[][] {
  return result.rows;
}

const registerTs = path.join(__dirname, "register-ts.js");
const crashChild = path.join(__dirname, "crash-child.ts");

/** Runs crash-child.ts: it prepares the given transaction, says so, and waits to be SIGKILLed. */
export async function prepareInChildThenKill(
  options: ShardStoreOptions,
  shardId: string,
  txId: string,
  statements: Array<{ sql: string; params: SqlValue[] }>,
): Promise<void> {
  const child = spawn(process.execPath, ["-r", registerTs, crashChild], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin.end(JSON.stringify({ options, shardId, txId, statements: encodeStatements(statements) }));
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (stdout.includes("PREPARED")) resolve();
    };
    child.stdout.on("data", check);
    child.once("exit", (code) => reject(new Error(`crash child exited (${code}) before preparing:\n${stdout}\n${stderr}`)));
  });
  child.kill("SIGKILL");
  await exited;
}

export function describeShardStoreBehaviour(harness: () => ShardStoreHarness): void {
  let h: ShardStoreHarness;
  const open: ShardStore[] = [];

  async function openStore(overrides?: Parameters<ShardStoreHarness["freshOptions"]>[0]): Promise<{ store: ShardStore; options: ShardStoreOptions }> {
    const options = await h.freshOptions(overrides);
    const store = await openShardStore(options);
    open.push(store);
    return { store, options };
  }

  async function reopen(options: ShardStoreOptions): Promise<ShardStore> {
    const store = await openShardStore(options);
    open.push(store);
    return store;
  }

  async function storeWithAccounts(overrides?: Parameters<ShardStoreHarness["freshOptions"]>[0]) {
    const opened = await openStore(overrides);
    await opened.store.ensureShard("s1");
    await opened.store.applySchema("s1", accountsDdl);
    await opened.store.executeAutocommit("s1", [
      { sql: "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", params: [1, "ada", 100] },
      { sql: "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", params: [2, "bob", 50] },
      { sql: "INSERT INTO counters (id, n) VALUES (1, 0)", params: [] },
    ]);
    return opened;
  }

  async function balances(store: ShardStore): Promise<SqlValue[][]> {
    return values(await store.read("s1", "SELECT owner, balance FROM accounts ORDER BY id", []));
  }

  beforeAll(() => {
    h = harness();
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
  });

  describe("shards", () => {
    test("ensureShard creates, listShards lists, dropShard removes; all idempotent", async () => {
      const { store } = await openStore();
      expect(await store.listShards()).toEqual([]);
      await store.ensureShard("orders-0");
      await store.ensureShard("orders-0");
      await store.ensureShard("Orders.1");
      expect(await store.listShards()).toEqual(["Orders.1", "orders-0"].sort());
      await store.applySchema("orders-0", ["CREATE TABLE t (id INTEGER PRIMARY KEY)"]);
      await store.applySchema("Orders.1", ["CREATE TABLE t (id INTEGER PRIMARY KEY, other TEXT)"]);
      await store.executeAutocommit("orders-0", [{ sql: "INSERT INTO t (id) VALUES (1)", params: [] }]);
      // Shards are separate databases: the same table name holds different rows in each.
      expect(values(await store.read("Orders.1", "SELECT count(*) FROM t", []))).toEqual([[0]]);
      expect(await store.sizeBytes("orders-0")).toBeGreaterThan(0);
      await store.dropShard("orders-0");
      await store.dropShard("orders-0");
      expect(await store.listShards()).toEqual(["Orders.1"]);
      await expectDbError(store.read("orders-0", "SELECT 1", []), "SHARD_NOT_FOUND");
      await expectDbError(store.begin("nope", "t1"), "SHARD_NOT_FOUND");
      await expectDbError(store.ensureShard("../escape"), "INVALID_ARGUMENT");
      await expectDbError(store.begin("Orders.1", "has_underscore"), "INVALID_ARGUMENT");
    });

    test("a reopened store still holds its shards and data", async () => {
      const { store, options } = await storeWithAccounts();
      await store.close();
      const again = await reopen(options);
      expect(await again.listShards()).toEqual(["s1"]);
      expect(await balances(again)).toEqual([["ada", 100], ["bob", 50]]);
    });
  });

  describe("statements", () => {
    test("CRUD through autocommit and reads, with rows affected", async () => {
      const { store } = await storeWithAccounts();
      const [inserted] = await store.executeAutocommit("s1", [
        { sql: "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", params: [3, "cy", 7] },
      ]);
      expect(inserted!.rowsAffected).toBe(1);
      expect(inserted!.lastInsertRowid).toEqual(({ sqlite: 3, postgres: null } as PerBackend<unknown>)[h.kind]);
      const [updated] = await store.executeAutocommit("s1", [
        { sql: "UPDATE accounts SET balance = balance + ? WHERE balance < ?", params: [1, 100] },
      ]);
      expect(updated!.rowsAffected).toBe(2);
      const [returned] = await store.executeAutocommit("s1", [
        { sql: "DELETE FROM accounts WHERE owner = ? RETURNING id, owner", params: ["cy"] },
      ]);
      expect(returned).toEqual({ columns: ["id", "owner"], rows: [[3, "cy"]], rowsAffected: 1, lastInsertRowid: null });
      const read = await store.read("s1", "SELECT id, owner, balance FROM accounts WHERE balance > ? ORDER BY id", [0]);
      expect(read).toEqual({
        columns: ["id", "owner", "balance"],
        rows: [[1, "ada", 100], [2, "bob", 51]],
        rowsAffected: 0,
        lastInsertRowid: null,
      });
    });

    test("a read sees the tables of visible shards by their plain names, for that statement only", async () => {
      const { store } = await storeWithAccounts();
      await store.ensureShard("orders-0");
      await store.applySchema("orders-0", ["CREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, total INTEGER NOT NULL)"]);
      await store.executeAutocommit("orders-0", [{ sql: "INSERT INTO orders (id, account_id, total) VALUES (10, 1, 5), (11, 1, 7), (12, 2, 1)", params: [] }]);
      const join = "SELECT a.owner, SUM(o.total) FROM accounts a JOIN orders o ON o.account_id = a.id GROUP BY a.owner ORDER BY a.owner";
      // Twice: the second run reuses the cached statement with the shard attached again.
      for (let run = 0; run < 2; run++) {
        expect(values(await store.read("s1", join, [], { visibleShards: ["orders-0"] }))).toEqual([["ada", 12], ["bob", 1]]);
      }
      // Only while asked for; the shard's own table comes first when names clash.
      await expectDbError(store.read("s1", "SELECT count(*) FROM orders", []), "NO_SUCH_TABLE");
      expect(values(await store.read("s1", "SELECT count(*) FROM accounts", [], { visibleShards: ["orders-0", "s1"] }))).toEqual([[2]]);
      await expectDbError(store.read("s1", join, [], { visibleShards: ["orders-9"] }), "SHARD_NOT_FOUND");
      const tooMany = Array.from({ length: 9 }, (_, i) => `other-${i}`);
      await expectDbError(store.read("s1", join, [], { visibleShards: tooMany }), "INVALID_ARGUMENT");
      // Writes still see only their own shard.
      await expectDbError(store.executeAutocommit("s1", [{ sql: "DELETE FROM orders", params: [] }]), "NO_SUCH_TABLE");
    });

    test("errors map to codes and keep the backend's message", async () => {
      const { store } = await storeWithAccounts();
      await expectDbError(store.read("s1", "SELEKT 1", []), "SYNTAX");
      await expectDbError(store.read("s1", "SELECT * FROM missing", []), "NO_SUCH_TABLE");
      const duplicate = await expectDbError(
        store.executeAutocommit("s1", [{ sql: "INSERT INTO accounts (id, owner, balance) VALUES (9, 'ada', 1)", params: [] }]),
        "CONSTRAINT",
      );
      expect(duplicate.message).toMatch(/unique/i);
      expect(duplicate.retryable).toBe(false);
      expect(duplicate.backendCode).toBeDefined();
      await expectDbError(store.read("s1", "DELETE FROM accounts", []), "INVALID_ARGUMENT");
      await expectDbError(store.executeAutocommit("s1", [{ sql: "BEGIN", params: [] }]), "INVALID_ARGUMENT");
      await expectDbError(store.read("s1", "SELECT * FROM _myc_txn", []), "INVALID_ARGUMENT");
      await expectDbError(store.read("s1", "SELECT ?", [undefined as unknown as SqlValue]), "INVALID_ARGUMENT");
      await expectDbError(store.read("s1", "SELECT 1; SELECT 2", []), "SYNTAX");
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
    });

    test("applySchema is atomic and reports re-applied DDL as ALREADY_EXISTS", async () => {
      const { store } = await storeWithAccounts();
      await expectDbError(
        store.applySchema("s1", ["CREATE TABLE fresh (id INTEGER PRIMARY KEY)", "CREATE TABLE accounts (id INTEGER PRIMARY KEY)"]),
        "ALREADY_EXISTS",
      );
      // The first statement did not stay applied.
      await expectDbError(store.read("s1", "SELECT * FROM fresh", []), "NO_SUCH_TABLE");
      await store.applySchema("s1", ["CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY)"]);
      await store.applySchema("s1", ["ALTER TABLE accounts ADD COLUMN note TEXT"]);
      // A cached statement sees the new column after the schema change.
      expect((await store.read("s1", "SELECT * FROM accounts WHERE id = ?", [1])).columns).toEqual(["id", "owner", "balance", "note"]);
      await expectDbError(store.applySchema("s1", ["ALTER TABLE accounts ADD COLUMN note TEXT"]), "ALREADY_EXISTS");
    });

    test("integers beyond 2^53 round-trip exactly; safe ones come back as numbers", async () => {
      const { store } = await openStore();
      await store.ensureShard("s1");
      await store.applySchema("s1", ["CREATE TABLE big (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)"]);
      const cases: Array<[bigint | number, bigint | number]> = [
        [2n ** 62n, 2n ** 62n],
        [-(2n ** 63n), -(2n ** 63n)],
        [2n ** 63n - 1n, 2n ** 63n - 1n],
        [2n ** 53n, 2n ** 53n],
        [BigInt(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
        [-Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER],
        [42, 42],
      ];
      await store.executeAutocommit(
        "s1",
        cases.map(([input], index) => ({ sql: "INSERT INTO big (id, v) VALUES (?, ?)", params: [index, input] })),
      );
      const rows = values(await store.read("s1", "SELECT v FROM big ORDER BY id", []));
      expect(rows.map((row) => row[0])).toEqual(cases.map(([, expected]) => expected));
      expect(values(await store.read("s1", "SELECT v FROM big WHERE v = ?", [2n ** 62n]))).toEqual([[2n ** 62n]]);
    });

    test("bytes, booleans, reals and nulls round-trip", async () => {
      const { store } = await openStore();
      await store.ensureShard("s1");
      await store.applySchema("s1", [`CREATE TABLE misc (id INTEGER PRIMARY KEY, b ${h.blobType}, f BOOLEAN, r DOUBLE PRECISION, t TEXT)`]);
      const bytes = new Uint8Array([0, 1, 2, 254, 255]);
      await store.executeAutocommit("s1", [
        { sql: "INSERT INTO misc (id, b, f, r, t) VALUES (?, ?, ?, ?, ?)", params: [1, bytes, true, 1.5, null] },
      ]);
      const [row] = values(await store.read("s1", "SELECT b, f, r, t FROM misc", []));
      expect(Buffer.from(row![0] as Uint8Array)).toEqual(Buffer.from(bytes));
      expect(row![1]).toBe(({ sqlite: 1, postgres: true } as PerBackend<SqlValue>)[h.kind]);
      expect(row!.slice(2)).toEqual([1.5, null]);
    });

    test("? placeholders: only real parameters are bound, '?' in literals and comments is left alone", async () => {
      const { store } = await storeWithAccounts();
      const result = await store.read(
        "s1",
        "SELECT '?' AS q, owner /* ? */ FROM accounts WHERE owner = ? -- trailing ?\n AND balance > ?",
        ["bob", 10],
      );
      expect(result.rows).toEqual([["?", "bob"]]);
      const quoted = await store.read("s1", `SELECT 'it''s ?' AS "wh?t" FROM accounts WHERE id = ?`, [1]);
      expect(quoted).toMatchObject({ columns: ["wh?t"], rows: [["it's ?"]] });
    });

    test("the statement cache counts hits and misses", async () => {
      const { store } = await storeWithAccounts({ statementCacheSize: 2 });
      const before = store.stats().statementCache;
      await store.read("s1", "SELECT owner FROM accounts WHERE id = ?", [1]);
      await store.read("s1", "SELECT owner FROM accounts WHERE id = ?", [2]);
      const after = store.stats().statementCache;
      expect(after.misses).toBeGreaterThan(before.misses);
      expect(after.hits).toBeGreaterThan(before.hits);
      // Bounded: more distinct statements than the cache holds still work (evicting the oldest).
      for (let index = 0; index < 5; index += 1) {
        expect(values(await store.read("s1", `SELECT ${index} AS n FROM accounts WHERE id = ?`, [1]))).toEqual([[index]]);
      }
      expect(store.stats().queryCount).toBeGreaterThan(0);
    });
  });

  describe("local transactions", () => {
    test("a reader does not see an open transaction's writes until it commits", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-iso");
      await tx.execute("UPDATE accounts SET balance = balance - ? WHERE owner = ?", [30, "ada"]);
      await tx.execute("UPDATE accounts SET balance = balance + ? WHERE owner = ?", [30, "bob"]);
      // The transaction sees its own writes …
      expect(values(await tx.execute("SELECT balance FROM accounts ORDER BY id", []))).toEqual([[70], [80]]);
      // … a reader does not, and is not blocked.
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
      expect(tx.statements.map((statement) => statement.sql)).toEqual([
        "UPDATE accounts SET balance = balance - ? WHERE owner = ?",
        "UPDATE accounts SET balance = balance + ? WHERE owner = ?",
      ]);
      await tx.commit();
      expect(tx.state).toBe("committed");
      expect(await balances(store)).toEqual([["ada", 70], ["bob", 80]]);
    });

    test("rollback undoes the writes and is idempotent", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-rb");
      await tx.execute("DELETE FROM accounts", []);
      await tx.rollback();
      await tx.rollback();
      expect(tx.state).toBe("rolled_back");
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
      await expectDbError(tx.execute("SELECT 1", []), "INTERNAL");
    });

    test("a failed statement fails the local transaction; only rollback is left", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-fail");
      await tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", []);
      await expectDbError(tx.execute("INSERT INTO accounts (id, owner, balance) VALUES (5, 'bob', 1)", []), "CONSTRAINT");
      expect(tx.state).toBe("failed");
      await expectDbError(tx.execute("SELECT 1", []), "ABORTED");
      await expectDbError(tx.prepare(), "ABORTED");
      await tx.rollback();
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
    });

    test("writers to one row are serialised: the second waits for the first, then sees its result", async () => {
      const { store } = await storeWithAccounts();
      const first = await store.begin("s1", "tx-w1");
      await first.execute("UPDATE counters SET n = n + 1 WHERE id = 1", []);
      let secondDone = false;
      const second = (async () => {
        const tx = await store.begin("s1", "tx-w2");
        await tx.execute("UPDATE counters SET n = n + 1 WHERE id = 1", []);
        await tx.commit();
        secondDone = true;
      })();
      // Give the second writer every chance to overtake; it must not.
      for (let turn = 0; turn < 20; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      expect(secondDone).toBe(false);
      await first.commit();
      await second;
      expect(values(await store.read("s1", "SELECT n FROM counters", []))).toEqual([[2]]);
    });

    test("a writer that waits longer than lockWaitTimeoutMs fails with LOCK_TIMEOUT (retryable)", async () => {
      const { store } = await storeWithAccounts({ lockWaitTimeoutMs: 150 });
      const holder = await store.begin("s1", "tx-hold");
      await holder.execute("UPDATE counters SET n = 10 WHERE id = 1", []);
      let waiter: LocalTransaction | undefined;
      const attempt = (async () => {
        waiter = await store.begin("s1", "tx-wait");
        await waiter.execute("UPDATE counters SET n = 20 WHERE id = 1", []);
      })();
      const error = await expectDbError(attempt, "LOCK_TIMEOUT");
      expect(error.retryable).toBe(true);
      await waiter?.rollback();
      await holder.commit();
      expect(values(await store.read("s1", "SELECT n FROM counters", []))).toEqual([[10]]);
    });

    test("closing the store rolls back open transactions", async () => {
      const { store, options } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-open");
      await tx.execute("DELETE FROM accounts", []);
      await store.close();
      const again = await reopen(options);
      expect(await balances(again)).toEqual([["ada", 100], ["bob", 50]]);
      expect(await again.recoverPrepared()).toEqual([]);
    });
  });

  describe("autocommit and group commit", () => {
    test("concurrent autocommits: one constraint failure fails only itself", async () => {
      const { store } = await storeWithAccounts();
      const requests = Array.from({ length: 24 }, (_, index) =>
        store.executeAutocommit("s1", [
          // Request 7 reuses the owner "ada", which is unique.
          { sql: "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", params: [100 + index, index === 7 ? "ada" : `user${index}`, index] },
          { sql: "UPDATE counters SET n = n + 1 WHERE id = 1", params: [] },
        ]),
      );
      const outcomes = await Promise.allSettled(requests);
      const failed = outcomes.flatMap((outcome, index) => (outcome.status === "rejected" ? [index] : []));
      expect(failed).toEqual([7]);
      expect((outcomes[7] as PromiseRejectedResult).reason).toMatchObject({ code: "CONSTRAINT" });
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") expect(outcome.value.map((result) => result.rowsAffected)).toEqual([1, 1]);
      }
      expect(values(await store.read("s1", "SELECT count(*) FROM accounts WHERE id >= 100", []))).toEqual([[23]]);
      // The failing request's first statement was undone with it.
      expect(values(await store.read("s1", "SELECT n FROM counters", []))).toEqual([[23]]);
    });

    test("autocommits wait for an open transaction and then apply", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-before");
      await tx.execute("UPDATE counters SET n = 100 WHERE id = 1", []);
      const later = store.executeAutocommit("s1", [{ sql: "UPDATE counters SET n = n + 1 WHERE id = 1", params: [] }]);
      await tx.commit();
      await later;
      expect(values(await store.read("s1", "SELECT n FROM counters", []))).toEqual([[101]]);
    });
  });

  describe("two-phase commit participant", () => {
    test("prepare holds the writes invisible; commitPrepared applies them; commit is idempotent", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-2pc-c");
      await tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", []);
      await tx.execute("SELECT * FROM accounts", []);
      await tx.prepare();
      expect(tx.state).toBe("prepared");
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
      const prepared = await store.recoverPrepared();
      expect(prepared.map(({ shardId, txId }) => ({ shardId, txId }))).toEqual([{ shardId: "s1", txId: "tx-2pc-c" }]);
      if (h.kind === "sqlite") {
        expect(prepared[0]!.statements).toEqual([{ sql: "UPDATE accounts SET balance = balance - 10 WHERE id = 1", params: [] }]);
      }
      await expectDbError(tx.execute("SELECT 1", []), "INTERNAL");
      await store.commitPrepared("s1", "tx-2pc-c");
      expect(await balances(store)).toEqual([["ada", 90], ["bob", 50]]);
      await store.commitPrepared("s1", "tx-2pc-c");
      await tx.commit();
      await expectDbError(store.abortPrepared("s1", "tx-2pc-c"), "ALREADY_COMMITTED");
      expect(await store.recoverPrepared()).toEqual([]);
      expect(await balances(store)).toEqual([["ada", 90], ["bob", 50]]);
    });

    test("abortPrepared undoes, is idempotent, and a later commit is refused", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-2pc-a");
      await tx.execute("DELETE FROM accounts WHERE id = 2", []);
      await tx.prepare();
      await store.abortPrepared("s1", "tx-2pc-a");
      await store.abortPrepared("s1", "tx-2pc-a");
      await tx.rollback();
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
      await expectDbError(store.commitPrepared("s1", "tx-2pc-a"), "NOT_PREPARED");
      // Unknown transactions: abort is a no-op (presumed abort), commit is refused.
      await store.abortPrepared("s1", "never-seen");
      await expectDbError(store.commitPrepared("s1", "never-seen"), "NOT_PREPARED");
      // The shard is writable again.
      await store.executeAutocommit("s1", [{ sql: "DELETE FROM accounts WHERE id = 2", params: [] }]);
    });

    test("commitPrepared of an open, unprepared transaction is refused; abortPrepared rolls it back", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-open-2pc");
      await tx.execute("DELETE FROM accounts", []);
      await expectDbError(store.commitPrepared("s1", "tx-open-2pc"), "NOT_PREPARED");
      await store.abortPrepared("s1", "tx-open-2pc");
      expect(tx.state).toBe("rolled_back");
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
    });

    test("an abort that arrives while prepare is in flight waits for it, then undoes it", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-race");
      await tx.execute("UPDATE accounts SET balance = 0", []);
      const prepared = tx.prepare();
      const aborted = store.abortPrepared("s1", "tx-race");
      await Promise.all([prepared, aborted]);
      expect(tx.state).toBe("rolled_back");
      expect(await store.recoverPrepared()).toEqual([]);
      expect(await balances(store)).toEqual([["ada", 100], ["bob", 50]]);
      await expectDbError(store.commitPrepared("s1", "tx-race"), "NOT_PREPARED");
    });

    test("a transaction id can be prepared on a shard only once", async () => {
      const { store } = await storeWithAccounts();
      const first = await store.begin("s1", "tx-once");
      await first.execute("UPDATE counters SET n = 1", []);
      await first.prepare();
      await first.commit();
      const second = await store.begin("s1", "tx-once");
      await second.execute("UPDATE counters SET n = 2", []);
      await expectDbError(second.prepare(), "INVALID_ARGUMENT");
      expect(second.state).toBe("rolled_back");
      expect(values(await store.read("s1", "SELECT n FROM counters", []))).toEqual([[1]]);
    });

    test("a prepared transaction survives closing the store and resolves after reopening", async () => {
      const { store, options } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-close");
      await tx.execute("UPDATE accounts SET balance = ? WHERE id = ?", [7n, 1]);
      await tx.prepare();
      await store.close();
      const again = await reopen(options);
      expect((await again.recoverPrepared()).map((entry) => entry.txId)).toEqual(["tx-close"]);
      expect(await balances(again)).toEqual([["ada", 100], ["bob", 50]]);
      await again.commitPrepared("s1", "tx-close");
      expect(await balances(again)).toEqual([["ada", 7], ["bob", 50]]);
      await again.close();
      // After another restart, a repeated commit still succeeds (the commit marker remembers it).
      const third = await reopen(options);
      expect(await third.recoverPrepared()).toEqual([]);
      await third.commitPrepared("s1", "tx-close");
      await expectDbError(third.abortPrepared("s1", "tx-close"), "ALREADY_COMMITTED");
    });

    test("crash after prepare (SIGKILL): recovery holds the writes until commitPrepared", async () => {
      const { store, options } = await storeWithAccounts();
      await store.close();
      const statements = [
        { sql: "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", params: [3, "crash", 2n ** 60n] },
        { sql: "UPDATE accounts SET balance = balance - ? WHERE id = ?", params: [25, 1] },
      ];
      await prepareInChildThenKill(options, "s1", "tx-crash", statements);

      const again = await reopen({ ...options, lockWaitTimeoutMs: 150 });
      const prepared = await again.recoverPrepared();
      expect(prepared.map(({ shardId, txId }) => ({ shardId, txId }))).toEqual([{ shardId: "s1", txId: "tx-crash" }]);
      expect(prepared[0]!.statements).toEqual(({ sqlite: statements, postgres: null } as PerBackend<unknown>)[h.kind]);
      // Held: readers see the state before the transaction, and a conflicting writer cannot get in.
      expect(await balances(again)).toEqual([["ada", 100], ["bob", 50]]);
      await expectDbError(
        again.executeAutocommit("s1", [{ sql: "UPDATE accounts SET balance = 0 WHERE id = 1", params: [] }]),
        "LOCK_TIMEOUT",
      );
      await again.commitPrepared("s1", "tx-crash");
      expect(await balances(again)).toEqual([["ada", 75], ["bob", 50], ["crash", 2n ** 60n]]);
      expect(await again.recoverPrepared()).toEqual([]);
    });

    test("crash after prepare (SIGKILL): recovery then abort leaves nothing behind", async () => {
      const { store, options } = await storeWithAccounts();
      await store.close();
      await prepareInChildThenKill(options, "s1", "tx-crash-abort", [
        { sql: "DELETE FROM accounts WHERE id = ?", params: [2] },
      ]);
      const again = await reopen(options);
      expect((await again.recoverPrepared()).map((entry) => entry.txId)).toEqual(["tx-crash-abort"]);
      await again.abortPrepared("s1", "tx-crash-abort");
      expect(await again.recoverPrepared()).toEqual([]);
      expect(await balances(again)).toEqual([["ada", 100], ["bob", 50]]);
      await again.close();
      const third = await reopen(options);
      expect(await third.recoverPrepared()).toEqual([]);
      await third.executeAutocommit("s1", [{ sql: "UPDATE counters SET n = 5", params: [] }]);
    });

    test("dropShard refuses while a transaction is prepared on it", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-drop");
      await tx.execute("UPDATE counters SET n = 3", []);
      await tx.prepare();
      await expectDbError(store.dropShard("s1"), "BUSY");
      await tx.rollback();
      await store.dropShard("s1");
      expect(await store.listShards()).toEqual([]);
    });

    test("pruneTransactionMarkers forgets old commit markers only", async () => {
      const { store } = await storeWithAccounts();
      const tx = await store.begin("s1", "tx-prune");
      await tx.execute("UPDATE counters SET n = 9", []);
      await tx.prepare();
      await tx.commit();
      expect(await store.pruneTransactionMarkers("s1", 0)).toBe(0);
      await store.commitPrepared("s1", "tx-prune");
      expect(await store.pruneTransactionMarkers("s1", Date.now() + 1)).toBe(1);
      // Without its marker the store can no longer tell that it committed.
      await expectDbError(store.commitPrepared("s1", "tx-prune"), "NOT_PREPARED");
    });
  });

  test("checkReady passes on a correctly configured backend", async () => {
    const { store } = await openStore();
    await store.checkReady();
  });
}
