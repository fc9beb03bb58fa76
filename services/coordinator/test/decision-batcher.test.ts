/**
 * The coordinator's group commit of 2PC decisions and its background acknowledgement writer, over a real
 * SQLite control store in a temporary directory.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openControlStore, type ControlStore, type DecisionInput, type DecisionLog } from "@mycelium/topology";
import { DecisionBatcher, DoneMarker } from "../src/adapters/decision-batcher";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-coordinator-decisions-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let store: ControlStore;
let counter = 0;

beforeEach(async () => {
  store = await openControlStore(`sqlite:${path.join(root, `c${++counter}.db`)}`, { synchronous: "NORMAL" });
});
afterEach(() => store.close());

function decision(txId: string, value: "commit" | "abort" = "commit", shards = ["s1", "s2"]): DecisionInput {
  return {
    txId,
    decision: value,
    participants: shards.map((shardId, i) => ({ shardId, nodeId: `n${i}`, epoch: 1 })),
    coordinatorId: "coordinator-1",
    atMs: 1_000,
  };
}

/** The store's decision log, failing the next `failures` calls of one method. */
function flaky(log: DecisionLog, method: "recordDecisions" | "markParticipantsDone", failures: number): DecisionLog {
  let left = failures;
  return new Proxy(log, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== method) return typeof value === "function" ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        if (left > 0) {
          left--;
          throw new Error("control store unavailable");
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe("DecisionBatcher", () => {
  it("writes a lone decision at once and durably", async () => {
    const sizes: number[] = [];
    const batcher = new DecisionBatcher(store.decisions, { onBatch: (size) => sizes.push(size) });
    await expect(batcher.record(decision("tx-1"))).resolves.toEqual({ txId: "tx-1", ok: true });
    expect(sizes).toEqual([1]);
    const stored = await store.decisions.getDecision("tx-1");
    expect(stored).toMatchObject({ txId: "tx-1", decision: "commit", coordinatorId: "coordinator-1", completedAtMs: null });
    expect(stored!.participants.map((p) => [p.shardId, p.done])).toEqual([
      ["s1", false],
      ["s2", false],
    ]);
  });

  it("groups decisions that arrive while a batch is being written: 20 concurrent records, 2 store writes", async () => {
    const sizes: number[] = [];
    const batcher = new DecisionBatcher(store.decisions, { onBatch: (size) => sizes.push(size) });
    const ids = Array.from({ length: 20 }, (_, i) => `tx-${String(i).padStart(2, "0")}`);
    const results = await Promise.all(ids.map((id) => batcher.record(decision(id, i(id) % 2 ? "abort" : "commit"))));
    expect(results).toEqual(ids.map((txId) => ({ txId, ok: true })));
    // The first goes alone; the 19 that queued behind it share the next write.
    expect(sizes).toEqual([1, 19]);
    for (const id of ids) expect((await store.decisions.getDecision(id))?.decision).toBe(i(id) % 2 ? "abort" : "commit");
  });

  it("splits the queue into batches of at most maxBatch", async () => {
    const sizes: number[] = [];
    const batcher = new DecisionBatcher(store.decisions, { maxBatch: 5, onBatch: (size) => sizes.push(size) });
    await Promise.all(Array.from({ length: 12 }, (_, n) => batcher.record(decision(`tx-${n}`))));
    expect(sizes).toEqual([1, 5, 5, 1]);
  });

  it("a decision conflicting with a recorded one resolves ok:false naming the standing decision; the rest of its batch is written", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await batcher.record(decision("tx-a", "commit"));
    const results = await Promise.all([
      batcher.record(decision("tx-0")), // occupies the first write, so the next three share one
      batcher.record(decision("tx-a", "abort")),
      batcher.record(decision("tx-b", "commit")),
      batcher.record(decision("tx-c", "abort")),
    ]);
    expect(results).toEqual([
      { txId: "tx-0", ok: true },
      { txId: "tx-a", ok: false, existing: "commit" },
      { txId: "tx-b", ok: true },
      { txId: "tx-c", ok: true },
    ]);
    expect((await store.decisions.getDecision("tx-a"))?.decision).toBe("commit");
    expect((await store.decisions.getDecision("tx-c"))?.decision).toBe("abort");
  });

  // BUG (services/coordinator/src/adapters/decision-batcher.ts:50-53, `new Map(results.map(r => [r.txId, r]))`):
  // results are matched to callers by txId, so when two decisions for the same transaction share a batch,
  // every caller for that transaction gets the result of the last entry. The store answers per entry, in
  // batch order. In the second test this tells the caller whose ABORT was refused (commit stands) that
  // its abort was recorded (ok:true) — it could then tell participants to abort a committed transaction.
  // Fix: resolve `batch[i]` with `results[i]` (as packages/topology's DecisionBatcher does).
  test("two different decisions for one new transaction in one batch: the first is written, only the second is refused", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    const [, first, second] = await Promise.all([
      batcher.record(decision("tx-0")), // occupies the first write, so the next two share one
      batcher.record(decision("tx-x", "commit")),
      batcher.record(decision("tx-x", "abort")),
    ]);
    expect((await store.decisions.getDecision("tx-x"))?.decision).toBe("commit");
    expect(first).toEqual({ txId: "tx-x", ok: true });
    expect(second).toEqual({ txId: "tx-x", ok: false, existing: "commit" });
  });

  test("a refused decision is reported refused even when a matching one shares its batch", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await batcher.record(decision("tx-a", "commit"));
    const [, refused, repeated] = await Promise.all([
      batcher.record(decision("tx-0")),
      batcher.record(decision("tx-a", "abort")),
      batcher.record(decision("tx-a", "commit")),
    ]);
    expect(refused).toEqual({ txId: "tx-a", ok: false, existing: "commit" });
    expect(repeated).toEqual({ txId: "tx-a", ok: true });
  });

  it("refuses new decisions while maxQueue are waiting (the one being written does not count)", async () => {
    const batcher = new DecisionBatcher(store.decisions, { maxQueue: 2 });
    const settled = await Promise.allSettled([
      batcher.record(decision("tx-1")), // written at once
      batcher.record(decision("tx-2")), // waiting
      batcher.record(decision("tx-3")), // waiting
      batcher.record(decision("tx-4")), // refused
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected"]);
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: "BUSY", message: "2 decisions already waiting to be written" });
    expect(await store.decisions.getDecision("tx-4")).toBeNull();
    // Once the queue drained, decisions are taken again.
    await expect(batcher.record(decision("tx-5"))).resolves.toEqual({ txId: "tx-5", ok: true });
  });

  it("a failed store write rejects every decision of that batch, and the next batch is written", async () => {
    const sizes: number[] = [];
    const batcher = new DecisionBatcher(flaky(store.decisions, "recordDecisions", 1), { onBatch: (size) => sizes.push(size) });
    const first = batcher.record(decision("tx-1"));
    const second = batcher.record(decision("tx-2"));
    await expect(first).rejects.toThrow("control store unavailable");
    await expect(second).resolves.toEqual({ txId: "tx-2", ok: true });
    await expect(batcher.record(decision("tx-3"))).resolves.toEqual({ txId: "tx-3", ok: true });
    expect(await store.decisions.getDecision("tx-1")).toBeNull();
    expect(sizes).toEqual([1, 1]);
  });

  it("an invalid decision fails its whole batch, not the batcher", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await expect(batcher.record({ ...decision("tx-1"), txId: "" })).rejects.toThrow();
    await expect(batcher.record(decision("tx-2"))).resolves.toEqual({ txId: "tx-2", ok: true });
  });
});

describe("DoneMarker", () => {
  it("marks participants done in the background; a decision with all done is complete", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await batcher.record(decision("tx-1", "commit", ["s1", "s2"]));
    await batcher.record(decision("tx-2", "abort", ["s3"]));
    const errors: unknown[] = [];
    const marker = new DoneMarker(store.decisions, (error) => errors.push(error));
    marker.mark("tx-1", "s1");
    marker.mark("tx-2", "s3");
    await marker.drain();
    let tx1 = await store.decisions.getDecision("tx-1");
    expect(tx1!.participants.map((p) => [p.shardId, p.done])).toEqual([
      ["s1", true],
      ["s2", false],
    ]);
    expect(tx1!.completedAtMs).toBeNull();
    expect((await store.decisions.getDecision("tx-2"))!.completedAtMs).not.toBeNull();
    expect((await store.decisions.listUndone()).map((d) => d.txId)).toEqual(["tx-1"]);

    marker.mark("tx-1", "s2");
    await marker.drain();
    tx1 = await store.decisions.getDecision("tx-1");
    expect(tx1!.participants.every((p) => p.done)).toBe(true);
    expect(tx1!.completedAtMs).not.toBeNull();
    expect(await store.decisions.listUndone()).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("drops marks beyond maxQueue (recovery re-sends them) and keeps the rest", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await batcher.record(decision("tx-1", "commit", ["s1", "s2", "s3"]));
    const marker = new DoneMarker(store.decisions, () => undefined, 1);
    marker.mark("tx-1", "s1"); // taken by the write that starts now
    marker.mark("tx-1", "s2"); // waits
    marker.mark("tx-1", "s3"); // the queue is full: dropped
    await marker.drain();
    const stored = await store.decisions.getDecision("tx-1");
    expect(stored!.participants.map((p) => [p.shardId, p.done])).toEqual([
      ["s1", true],
      ["s2", true],
      ["s3", false],
    ]);
  });

  it("reports a failed write to onError and goes on with later marks", async () => {
    const batcher = new DecisionBatcher(store.decisions);
    await batcher.record(decision("tx-1", "commit", ["s1", "s2"]));
    const errors: unknown[] = [];
    const marker = new DoneMarker(flaky(store.decisions, "markParticipantsDone", 1), (error) => errors.push(error));
    marker.mark("tx-1", "s1");
    await marker.drain();
    expect(errors.map((e) => (e as Error).message)).toEqual(["control store unavailable"]);
    marker.mark("tx-1", "s2");
    await marker.drain();
    const stored = await store.decisions.getDecision("tx-1");
    expect(stored!.participants.map((p) => [p.shardId, p.done])).toEqual([
      ["s1", false],
      ["s2", true],
    ]);
  });

  it("drain() with nothing to do resolves at once", async () => {
    const marker = new DoneMarker(store.decisions, () => undefined);
    await expect(marker.drain()).resolves.toBeUndefined();
  });
});

function i(id: string): number {
  return Number(id.slice(3));
}
