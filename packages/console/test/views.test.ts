import { buildInDoubtViews, buildNodeViews, buildTableViews, compareChecksum, nodeNamesFrom, RecentTransactions, worstChecksum } from "@mycelium/console";

const names = nodeNamesFrom(new Map([["node-a", "v1"], ["node-b", "v2"], ["node-m", "m1"]]));

const shard = (index: number, primary: string, replicas: string[], table = "accounts") => ({
  shardId: `${table}-000${index}`,
  table,
  index,
  state: "active",
  epoch: 1,
  primaryNodeId: primary,
  replicaNodeIds: [primary, ...replicas],
  sizeBytes: 100,
  keyRange: "hash [0, 1)",
});

describe("nodes", () => {
  test("validators first then by name; primaries counted from the shard map; heartbeat age from now", () => {
    const nodes = [
      { nodeId: "node-m", type: "miner" as const, status: "up" as const, address: "m:1", lastHeartbeatAtMs: 9_000, shardCount: 1, storedBytes: 0, weight: 100 },
      { nodeId: "node-b", type: "validator" as const, status: "down" as const, address: "b:1", lastHeartbeatAtMs: 0, shardCount: 2, storedBytes: 0, weight: 1 },
      { nodeId: "node-a", type: "validator" as const, status: "up" as const, address: "a:1", lastHeartbeatAtMs: 9_500, shardCount: 2, storedBytes: 5, weight: 1 },
    ];
    const loads = new Map([["node-a", { openTransactions: 3, preparedTransactions: 1, statementsPerSecond: 2.5 }]]);
    const views = buildNodeViews(nodes, loads, [shard(0, "node-a", ["node-b"]), shard(1, "node-a", ["node-m"]), shard(2, "node-b", ["node-a"])], names, 10_000);
    expect(views.map((v) => [v.name, v.primaryCount, v.heartbeatAgeMs, v.openTransactions])).toEqual([
      ["v1", 2, 500, 3],
      ["v2", 1, -1, null],
      ["m1", 0, 1000, null],
    ]);
  });

  test("a node without a local name shows the start of its id", () => {
    expect(names("0123456789abcdef")).toBe("01234567");
    expect(names("")).toBe("—");
  });
});

describe("tables and shards", () => {
  const policy = (table: string, colocationGroup = "") => ({ table, shardKeys: ["id"], shardFunction: "hash", replicationFactor: 0.5, minValidatorCopies: 1, validatorOnly: false, syncReplicas: 0, colocationGroup, version: 1 });

  test("each shard joins its replication positions and checksum results; worst checksum and max lag per shard", () => {
    const replication = new Map([
      ["accounts-0000", { shardId: "accounts-0000", headLsn: 10, failovers: 1, replicas: [{ nodeId: "node-a", primary: true, appliedLsn: 10, lagEntries: 0, lagMs: 0, state: "primary" }, { nodeId: "node-b", primary: false, appliedLsn: 7, lagEntries: 3, lagMs: 250, state: "catching-up" }, { nodeId: "node-m", primary: false, appliedLsn: 10, lagEntries: 0, lagMs: 0, state: "caught-up" }] }],
    ]);
    const checksums = new Map([["accounts-0000", new Map([["node-b", { state: "behind" as const, checkedAtMs: 5 }], ["node-m", { state: "mismatch" as const, checkedAtMs: 7 }]])]]);
    const [table] = buildTableViews([policy("accounts")], [shard(1, "node-b", ["node-a"]), shard(0, "node-a", ["node-b", "node-m"])], replication, checksums, names);
    expect(table!.shards.map((s) => s.shardId)).toEqual(["accounts-0000", "accounts-0001"]);
    const first = table!.shards[0]!;
    expect(first).toMatchObject({ primaryName: "v1", headLsn: 10, failovers: 1, lagMsMax: 250, checksum: "mismatch", checksumCheckedAtMs: 5 });
    expect(first.replicas.map((r) => [r.nodeName, r.primary, r.lagEntries, r.checksum])).toEqual([["v1", true, 0, "match"], ["v2", false, 3, "behind"], ["m1", false, 0, "mismatch"]]);
    // No replication answer for the second shard: lag and positions unknown, not zero.
    expect(table!.shards[1]).toMatchObject({ headLsn: null, lagMsMax: null, checksum: "unknown" });
    expect(table!.shards[1]!.replicas[1]!.lagEntries).toBe(-1);
  });

  test("tables of one colocation group each list the group's shards; shards without a policy still show", () => {
    const views = buildTableViews([policy("orders", "customers"), policy("customers", "customers")], [shard(0, "node-a", [], "customers"), shard(0, "node-a", [], "stray")], new Map(), new Map(), names);
    expect(views.map((t) => [t.table, t.shards.map((s) => s.shardId)])).toEqual([
      ["customers", ["customers-0000"]],
      ["orders", ["customers-0000"]],
      ["stray", ["stray-0000"]],
    ]);
    expect(views[2]!.shardFunction).toBe("?");
    // A shard with one copy has nothing to compare and no lag.
    expect(views[0]!.shards[0]).toMatchObject({ checksum: "match" });
  });

  test("checksums: equal at the secondary's position match; unequal mismatch; no older checksum is behind", () => {
    expect(compareChecksum({ appliedLsn: 5, checksum: "x" }, { checksumAtLsn: "x" })).toBe("match");
    expect(compareChecksum({ appliedLsn: 5, checksum: "x" }, { checksumAtLsn: "y" })).toBe("mismatch");
    expect(compareChecksum({ appliedLsn: 5, checksum: "x" }, { checksumAtLsn: "" })).toBe("behind");
    expect(compareChecksum({ appliedLsn: 5, checksum: "x" }, null)).toBe("unknown");
    expect(compareChecksum({ appliedLsn: 0, checksum: "" }, null)).toBe("match");
    expect(worstChecksum(["match", "behind", "unknown"])).toBe("unknown");
    expect(worstChecksum([])).toBe("match");
  });
});

describe("in-doubt transactions", () => {
  const decided = {
    txId: "t-decided",
    decision: "commit" as const,
    coordinatorId: "coordinator",
    decidedAtMs: 1_000,
    startedAtMs: 900,
    participants: [{ shardId: "accounts-0000", nodeId: "node-a", done: true, statements: [], error: "" }, { shardId: "accounts-0001", nodeId: "node-b", done: false, statements: ["UPDATE …"], error: "" }],
  };
  const prepared = [
    { nodeId: "node-b", txId: "t-decided", shardId: "accounts-0001", preparedAtMs: 950, statements: ["UPDATE …"] },
    { nodeId: "node-a", txId: "t-orphan", shardId: "accounts-0002", preparedAtMs: 2_000, statements: ["UPDATE a"] },
    { nodeId: "node-b", txId: "t-orphan", shardId: "accounts-0001", preparedAtMs: 1_500, statements: ["UPDATE b"] },
    { nodeId: "node-a", txId: "t-in-flight", shardId: "accounts-0003", preparedAtMs: 9_900, statements: [] },
  ];

  test("decided ones with their participants; prepared ones nobody decided, oldest first; young ones are in flight, not in doubt", () => {
    const views = buildInDoubtViews([decided], prepared, names, 10_000, 2_000);
    expect(views.map((v) => [v.txId, v.kind, v.decision, v.sinceMs])).toEqual([
      ["t-decided", "decided", "commit", 1_000],
      ["t-orphan", "undecided", "none", 1_500],
    ]);
    expect(views[0]!.participants.map((p) => [p.nodeName, p.done, p.prepared])).toEqual([["v1", true, false], ["v2", false, true]]);
    expect(views[1]!.participants.map((p) => `${p.shardId}@${p.nodeName}`)).toEqual(["accounts-0001@v2", "accounts-0002@v1"]);
  });
});

describe("recent transactions", () => {
  test("newest news first, bounded, outcome from the completion event", () => {
    const recent = new RecentTransactions(2);
    recent.apply({ type: "state_changed", txId: "a", newState: "active", atMs: 1 });
    recent.apply({ type: "state_changed", txId: "b", newState: "preparing", atMs: 2 });
    recent.apply({ type: "completed", txId: "a", success: true, durationMs: 5, atMs: 10 });
    expect(recent.list().map((t) => [t.txId, t.outcome, t.state, t.durationMs, t.startedAtMs])).toEqual([
      ["a", "committed", "committed", 5, 5],
      ["b", "open", "preparing", null, 2],
    ]);
    recent.apply({ type: "completed", txId: "c", success: false, durationMs: 1, atMs: 11 });
    expect(recent.list().map((t) => [t.txId, t.outcome])).toEqual([["c", "aborted"], ["a", "committed"]]);
    expect(() => new RecentTransactions(0)).toThrow(RangeError);
  });
});
