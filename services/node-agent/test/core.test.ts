import { common } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { OutcomeMemory } from "../src/core/outcome-memory";
import { notHostedError, ShardAssignments, staleEpochError, type Assignment } from "../src/core/shard-assignments";

function shard(shardId: string, epoch: number, primaryNodeId = "n1", table = "orders"): common.ShardInfo {
  return common.ShardInfo.create({ shardId, table, epoch, primaryNodeId });
}

function assignment(shardId: string, epoch: number, primaryNodeId = "n1", table = "orders"): Assignment {
  return { shardId, table, epoch, primaryNodeId };
}

describe("ShardAssignments.update", () => {
  it("replaces the assignments with the router's list and reports what was added and removed", () => {
    const assignments = new ShardAssignments();
    expect(assignments.update([shard("a", 1), shard("b", 1)], 1)).toEqual({
      added: [assignment("a", 1), assignment("b", 1)],
      removed: [],
    });
    expect(assignments.update([shard("b", 2, "n2"), shard("c", 1)], 2)).toEqual({
      added: [assignment("c", 1)],
      removed: [assignment("a", 1)],
    });
    expect(assignments.all).toEqual([assignment("b", 2, "n2"), assignment("c", 1)]);
    expect(assignments.get("a")).toBeUndefined();
    expect(assignments.get("b")).toEqual(assignment("b", 2, "n2"));
  });

  it("ignores a list from an older shard-map version", () => {
    const assignments = new ShardAssignments();
    assignments.update([shard("a", 3)], 10);
    expect(assignments.update([shard("x", 1)], 9)).toEqual({ added: [], removed: [] });
    expect(assignments.all).toEqual([assignment("a", 3)]);
    // And the version it holds stays 10: a later 9 is still old.
    expect(assignments.update([], 9)).toEqual({ added: [], removed: [] });
    expect(assignments.all).toEqual([assignment("a", 3)]);
  });

  it("applies the same version again (a repeated heartbeat answer) without reporting changes", () => {
    const assignments = new ShardAssignments();
    assignments.update([shard("a", 1)], 5);
    expect(assignments.update([shard("a", 1)], 5)).toEqual({ added: [], removed: [] });
    expect(assignments.all).toEqual([assignment("a", 1)]);
  });

  it("keeps only the fields it needs, and its own copies", () => {
    const assignments = new ShardAssignments();
    const info = shard("a", 1);
    assignments.update([info], 1);
    info.epoch = 99;
    expect(assignments.get("a")).toEqual(assignment("a", 1));
  });
});

describe("ShardAssignments.check", () => {
  const assignments = new ShardAssignments();
  assignments.update([shard("a", 5)], 1);

  it("ok when the caller routed at the node's epoch", () => {
    expect(assignments.check("a", 5)).toEqual({ ok: true, assignment: assignment("a", 5) });
  });

  it("stale when the caller's epoch is older, with the epoch the node knows", () => {
    expect(assignments.check("a", 4)).toEqual({ ok: false, kind: "stale", known: 5 });
    expect(assignments.check("a", 0)).toEqual({ ok: false, kind: "stale", known: 5 });
  });

  it("behind when the caller is ahead, or the node does not know the shard", () => {
    expect(assignments.check("a", 6)).toEqual({ ok: false, kind: "behind" });
    expect(assignments.check("zzz", 1)).toEqual({ ok: false, kind: "behind" });
  });
});

describe("ShardAssignments.learn", () => {
  it("adds an unknown shard, keeps the higher epoch, and ignores an older or equal one", () => {
    const assignments = new ShardAssignments();
    assignments.learn(assignment("a", 2, "n1"));
    expect(assignments.get("a")).toEqual(assignment("a", 2, "n1"));
    assignments.learn(assignment("a", 1, "n9"));
    expect(assignments.get("a")).toEqual(assignment("a", 2, "n1"));
    assignments.learn(assignment("a", 2, "n9"));
    expect(assignments.get("a")).toEqual(assignment("a", 2, "n1"));
    assignments.learn(assignment("a", 3, "n3"));
    expect(assignments.get("a")).toEqual(assignment("a", 3, "n3"));
    expect(assignments.check("a", 3).ok).toBe(true);
  });

  it("a learned shard stands next to those from the router until the next update", () => {
    const assignments = new ShardAssignments();
    assignments.update([shard("a", 1)], 1);
    assignments.learn(assignment("b", 1));
    expect(assignments.all.map((a) => a.shardId).sort()).toEqual(["a", "b"]);
    expect(assignments.update([shard("a", 1), shard("b", 1)], 2)).toEqual({ added: [], removed: [] });
  });
});

describe("epoch errors", () => {
  it("a stale epoch is FAILED_PRECONDITION / STALE_EPOCH with the facts as details", () => {
    const error = staleEpochError("s-1", 3, 5);
    expect(error).toBeInstanceOf(MyceliumError);
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.reason).toBe("STALE_EPOCH");
    expect(error.details).toEqual({ shardId: "s-1", epoch: "3", known: "5" });
    expect(error.message).toContain("route it again");
  });

  it("a shard the node does not hold is also STALE_EPOCH, so the caller re-routes", () => {
    const error = notHostedError("s-1", "node-7");
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.reason).toBe("STALE_EPOCH");
    expect(error.message).toBe("node node-7 does not hold shard s-1; route it again");
  });
});

describe("OutcomeMemory", () => {
  it("answers what it was told", () => {
    const memory = new OutcomeMemory(10);
    memory.remember("tx-1/s1", "committed");
    memory.remember("tx-2/s1", "aborted");
    expect(memory.get("tx-1/s1")).toBe("committed");
    expect(memory.get("tx-2/s1")).toBe("aborted");
    expect(memory.get("tx-3/s1")).toBeUndefined();
    memory.remember("tx-1/s1", "aborted");
    expect(memory.get("tx-1/s1")).toBe("aborted");
  });

  it("is bounded: beyond capacity the oldest are forgotten first", () => {
    const memory = new OutcomeMemory(3);
    for (const key of ["a", "b", "c", "d"]) memory.remember(key, "committed");
    expect(["a", "b", "c", "d"].map((key) => memory.get(key))).toEqual([undefined, "committed", "committed", "committed"]);
  });

  it("remembering a key again makes it the newest", () => {
    const memory = new OutcomeMemory(3);
    for (const key of ["a", "b", "c"]) memory.remember(key, "committed");
    memory.remember("a", "committed");
    memory.remember("d", "aborted");
    expect(["a", "b", "c", "d"].map((key) => memory.get(key))).toEqual(["committed", undefined, "committed", "aborted"]);
  });

  it("never holds more than its capacity", () => {
    const memory = new OutcomeMemory(50);
    for (let i = 0; i < 1000; i++) memory.remember(`tx-${i % 120}`, i % 3 ? "committed" : "aborted");
    const held = Array.from({ length: 120 }, (_, i) => memory.get(`tx-${i}`)).filter((v) => v !== undefined);
    expect(held).toHaveLength(50);
  });
});
