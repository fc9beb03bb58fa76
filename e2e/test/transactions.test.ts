/**
 * The transaction API's behaviours (issue 4): interactive transactions with read-your-writes and
 * isolation, rollback, AddOperation, the idle timeout, MAX_TRANSACTIONS, and the event stream's order.
 */
import { common, router } from "@mycelium/proto";
import { eventually, InProcessCluster } from "@mycelium/testkit";
import type { MyceliumClient, TransactionEvent } from "@mycelium/client";

jest.setTimeout(120_000);

let cluster: InProcessCluster;
let db: MyceliumClient;
/** Two ids whose rows live on different shards. */
let a: number;
let b: number;

beforeAll(async () => {
  cluster = await InProcessCluster.start({ env: { MYCELIUM_TRANSACTION_TIMEOUT: "1500ms", MYCELIUM_MAX_TRANSACTIONS: "4" } });
  db = cluster.client("admin");
  await db.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "kv", shardKeys: ["k"], initialShardCount: 4, replicationFactor: 0.5 }) }));
  await db.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)");
  a = 1;
  const shardOf = async (k: number) => (await db.explain("SELECT * FROM kv WHERE k = ?", [k])).targets[0]!.shard!.shardId;
  b = 2;
  while ((await shardOf(b)) === (await shardOf(a))) b++;
});

afterAll(async () => {
  await cluster?.stop();
});

async function value(k: number): Promise<unknown> {
  return (await db.execute("SELECT v FROM kv WHERE k = ?", [k])).rows[0]?.[0] ?? null;
}

test("an interactive transaction reads its own writes; others see them only after commit", async () => {
  const tx = await db.begin();
  await tx.execute("INSERT INTO kv (k, v) VALUES (?, ?)", [a, "a1"]);
  await tx.execute("INSERT INTO kv (k, v) VALUES (?, ?)", [b, "b1"]);
  expect((await tx.execute("SELECT v FROM kv WHERE k = ?", [a])).rows).toEqual([["a1"]]);
  expect(await value(a)).toBeNull();
  await tx.commit();
  expect([await value(a), await value(b)]).toEqual(["a1", "b1"]);
});

test("rollback leaves nothing and releases the shards", async () => {
  const tx = await db.begin();
  await tx.execute("UPDATE kv SET v = ? WHERE k = ?", ["a2", a]);
  await tx.execute("UPDATE kv SET v = ? WHERE k = ?", ["b2", b]);
  await tx.rollback();
  expect([await value(a), await value(b)]).toEqual(["a1", "b1"]);
  // The write locks are gone: a write to the same shards succeeds at once.
  await db.execute("UPDATE kv SET v = ? WHERE k = ?", ["a3", a]);
  expect(await value(a)).toBe("a3");
});

test("AddOperation queues statements that run at commit, atomically", async () => {
  const tx = await db.begin();
  expect(await tx.addOperation("UPDATE kv SET v = ? WHERE k = ?", ["a4", a])).toBe(1);
  expect(await tx.addOperation("UPDATE kv SET v = ? WHERE k = ?", ["b4", b])).toBe(2);
  expect(await value(a)).toBe("a3");
  const results = await tx.commit();
  expect(results.map((r) => r.rowsAffected)).toEqual([1, 1]);
  expect([await value(a), await value(b)]).toEqual(["a4", "b4"]);
});

test("a failing statement aborts the whole transaction", async () => {
  const tx = await db.begin();
  await tx.execute("UPDATE kv SET v = ? WHERE k = ?", ["a5", a]);
  await expect(tx.execute("INSERT INTO kv (k, v) VALUES (?, ?)", [b, "duplicate"])).rejects.toMatchObject({ code: "FAILED_PRECONDITION", reason: "CONSTRAINT" });
  await expect(tx.commit()).rejects.toMatchObject({ code: expect.stringMatching(/ABORTED|NOT_FOUND/) });
  expect(await value(a)).toBe("a4");
});

test("an idle transaction is aborted after MYCELIUM_TRANSACTION_TIMEOUT and its locks released", async () => {
  const tx = await db.begin();
  await tx.execute("UPDATE kv SET v = ? WHERE k = ?", ["idle", a]);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await expect(tx.execute("UPDATE kv SET v = ? WHERE k = ?", ["late", b])).rejects.toMatchObject({ code: expect.stringMatching(/ABORTED|NOT_FOUND/) });
  expect(await value(a)).toBe("a4");
  await db.execute("UPDATE kv SET v = ? WHERE k = ?", ["a6", a]);
  expect(await value(a)).toBe("a6");
});

test("MAX_TRANSACTIONS open transactions: one more is RESOURCE_EXHAUSTED until one ends", async () => {
  const open = await Promise.all(Array.from({ length: 4 }, () => db.begin()));
  await expect(db.begin()).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "MAX_TRANSACTIONS", message: expect.stringContaining("MYCELIUM_MAX_TRANSACTIONS=4") });
  await open[0]!.rollback();
  const next = await db.begin();
  await Promise.all([next, ...open.slice(1)].map((tx) => tx.rollback()));
});

test("the event stream delivers a transaction's events in order", async () => {
  const controller = new AbortController();
  const events: TransactionEvent[] = [];
  const stream = (async () => {
    try {
      for await (const event of db.subscribe({ signal: controller.signal })) events.push(event);
    } catch {
      // cancelled
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const { txId } = await db.executeTransaction([
    { sql: "UPDATE kv SET v = ? WHERE k = ?", params: ["e", a] },
    { sql: "UPDATE kv SET v = ? WHERE k = ?", params: ["e", b] },
  ]);
  const failed = await db.executeTransaction([
    { sql: "UPDATE kv SET v = ? WHERE k = ?", params: ["f", a] },
    { sql: "INSERT INTO kv (k, v) VALUES (?, ?)", params: [b, "duplicate"] },
  ]).catch(() => "failed");
  expect(failed).toBe("failed");
  await eventually(() => expect(events.filter((e) => e.type === "completed")).toHaveLength(2));
  controller.abort();
  await stream;
  const ofTx = (id: string) => events.filter((e) => e.txId === id).map((e) => (e.type === "completed" ? `completed:${e.success}` : `${e.oldState}>${e.newState}`));
  expect(ofTx(txId)).toEqual(["none>active", "active>preparing", "preparing>prepared", "prepared>committing", "committing>committed", "completed:true"]);
  const other = events.find((e) => e.type === "completed" && e.txId !== txId)!.txId;
  expect(ofTx(other)).toEqual(["none>active", "active>aborting", "aborting>aborted", "completed:false"]);
  // Sequence numbers only grow.
  expect(events.map((e) => (e as unknown as { atMs: number }).atMs)).toEqual([...events.map((e) => (e as unknown as { atMs: number }).atMs)].sort((x, y) => x - y));
});
