import fc from "fast-check";
import { classifyDivergence, divergentEntries, type EntryRows } from "../src/core/divergence";
import { leaseCertainlyExpired, leaseDurationMs } from "../src/core/lease-timing";
import { coalesce } from "../src/core/coalesce";
import { choosePromotion, replicasAfterPromotion, type Candidate } from "../src/core/promotion";

describe("lease timing", () => {
  it("a lease always ends before the replicator may fail over, for one-way delays under one interval", () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 10_000 }), fc.integer({ min: 1, max: 20 }), fc.nat(), fc.double({ min: 0, max: 0.999, noNaN: true }), (interval, factor, sentAt, delayFraction) => {
        const timeout = interval * (factor + 1);
        const duration = leaseDurationMs(interval, timeout);
        const receivedAt = sentAt + delayFraction * interval;
        const leaseEnds = receivedAt + duration;
        // The first moment the replicator would promote someone else:
        const promoteAt = sentAt + timeout + 1;
        expect(leaseCertainlyExpired(sentAt, promoteAt, timeout)).toBe(true);
        expect(leaseEnds).toBeLessThan(promoteAt);
      }),
    );
  });
  it("refuses a timeout that does not exceed the interval", () => {
    expect(() => leaseDurationMs(5000, 5000)).toThrow("must exceed");
  });
});

describe("choosePromotion", () => {
  const c = (nodeId: string, kind: Candidate["kind"], appliedLsn: number | null): Candidate => ({ nodeId, kind, appliedLsn });
  it("takes the most up-to-date reachable replica, validators first among equals, never the old primary", () => {
    expect(choosePromotion([c("old", "validator", 99), c("m", "miner", 10), c("v", "validator", 9)], "old")!.nodeId).toBe("m");
    expect(choosePromotion([c("m", "miner", 10), c("v", "validator", 10)], "old")!.nodeId).toBe("v");
    expect(choosePromotion([c("v2", "validator", 10), c("v1", "validator", 10)], "old")!.nodeId).toBe("v1");
    expect(choosePromotion([c("v", "validator", null), c("old", "validator", 5)], "old")).toBeNull();
  });
  it("keeps the old primary as a secondary after the new one", () => {
    expect(replicasAfterPromotion(["a", "b", "c"], "c")).toEqual(["c", "a", "b"]);
  });
});

describe("divergence", () => {
  const entry = (lsn: number, origin: string, originSeq: number, keys: number[]): EntryRows & { id: number } => ({
    id: lsn,
    lsn,
    txId: `t${lsn}`,
    origin,
    originSeq,
    rows: keys.map((k) => ({ table: "accounts", key: { id: k } })),
  });

  it("finds the returning primary's own entries beyond what the current primary saw of it", () => {
    const held = [entry(1, "old", 1, [1]), entry(2, "old", 2, [2]), entry(3, "other", 7, [3]), entry(4, "old", 3, [4])];
    expect(divergentEntries(held, "old", { old: 1, new: 5 }).map((e) => e.lsn)).toEqual([2, 4]);
    expect(divergentEntries(held, "old", {}).map((e) => e.lsn)).toEqual([1, 2, 4]);
  });

  it("re-applies what touched nothing changed since the fork, journals the rest, holding back dependents", () => {
    const divergent = [entry(10, "old", 10, [1]), entry(11, "old", 11, [2]), entry(12, "old", 12, [1, 3]), entry(13, "old", 13, [4])];
    const sinceFork = [entry(20, "new", 1, [2]), entry(21, "new", 2, [9])];
    const { reapply, conflicting } = classifyDivergence(divergent, sinceFork);
    expect(reapply.map((e) => e.lsn)).toEqual([10, 12, 13]);
    expect(conflicting.map((c) => c.entry.lsn)).toEqual([11]);
    expect(conflicting[0]!.reasons[0]).toContain("also changed on the current primary (lsn 20)");

    const chained = classifyDivergence([entry(10, "old", 10, [2, 6]), entry(11, "old", 11, [6])], sinceFork);
    expect(chained.conflicting.map((c) => c.entry.lsn)).toEqual([10, 11]);
    expect(chained.conflicting[1]!.reasons[0]).toContain("earlier conflicting transaction");
  });

  it("never re-applies a transaction that touches a row changed on the current primary (property)", () => {
    const keys = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(fc.array(keys, { maxLength: 8 }), fc.array(keys, { maxLength: 8 }), (mine, theirs) => {
        const divergent = mine.map((k, i) => entry(100 + i, "old", 100 + i, k));
        const since = theirs.map((k, i) => entry(200 + i, "new", i + 1, k));
        const changed = new Set(theirs.flat());
        const { reapply, conflicting } = classifyDivergence(divergent, since);
        expect(reapply.length + conflicting.length).toBe(divergent.length);
        for (const e of reapply) for (const row of e.rows) expect(changed.has(row.key.id as number)).toBe(false);
      }),
    );
  });
});

describe("coalesce", () => {
  async function* source(values: number[], gate: Array<Promise<void>>): AsyncGenerator<number> {
    for (let i = 0; i < values.length; i++) {
      await gate[i];
      yield values[i]!;
    }
  }

  it("yields everything that arrived while the consumer was busy as one batch, in order, nothing lost", async () => {
    const batches: number[][] = [];
    let firstTaken!: () => void;
    const taken = new Promise<void>((resolve) => (firstTaken = resolve));
    // 1 arrives at once; 2..5 only once the consumer holds 1 and is busy with it.
    for await (const batch of coalesce(source([1, 2, 3, 4, 5], [Promise.resolve(), taken, taken, taken, taken]), 64)) {
      batches.push(batch);
      if (batches.length === 1) {
        firstTaken();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    expect(batches).toEqual([[1], [2, 3, 4, 5]]);
  });

  it("reads no further ahead than its bound", async () => {
    let read = 0;
    async function* counting(): AsyncGenerator<number> {
      for (let i = 0; i < 100; i++) {
        read++;
        yield i;
      }
    }
    const iterator = coalesce(counting(), 4)[Symbol.asyncIterator]();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const first = await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((first.value as number[]).length).toBeLessThanOrEqual(4);
    expect(read).toBeLessThanOrEqual(4 + 4 + 1);
    await iterator.return(undefined);
  });

  it("passes on the source's failure after the batches before it", async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error("stream broke");
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const batch of coalesce(failing(), 8)) seen.push(...batch);
      })(),
    ).rejects.toThrow("stream broke");
    expect(seen).toEqual([1]);
  });

  it("refuses a bound that is not a positive integer", async () => {
    await expect(coalesce(source([], []), 0).next()).rejects.toThrow("maxBuffered must be a positive integer");
  });
});
