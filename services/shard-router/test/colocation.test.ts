import { common, toValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { analyze, loadSqlParser } from "@mycelium/sql";
import { checkColocated, isReferenceTable } from "../src/core/colocation";
import { planStatement } from "../src/core/route-planner";
import { fixtureLayout, fixtureSnapshot, fixtureTables } from "./support/fixture";

beforeAll(() => loadSqlParser());

const spec = (table: string) => fixtureTables.find((t) => t.table === table)!;
const users = () => fixtureLayout(spec("users"));
const variant = (changes: Partial<(typeof fixtureTables)[number]>) => fixtureLayout({ ...spec("orders"), ...changes, policy: { ...spec("orders").policy, ...changes.policy } });

function refusal(run: () => void): MyceliumError {
  try {
    run();
  } catch (error) {
    if (error instanceof MyceliumError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("checkColocated", () => {
  test("aligned tables of one group pass", () => {
    expect(() => checkColocated([users(), variant({})])).not.toThrow();
  });
  test.each([
    ["another colocation group", { policy: { colocationGroup: "elsewhere" } }, "INVALID_ARGUMENT", "NOT_COLOCATED", /^tables users \(colocation group accounts\) and orders \(group elsewhere\) are not co-located/],
    ["another shard function", { policy: { shardFunction: common.ShardFunction.SHARD_FUNCTION_CUSTOM, customFunction: "identity_u32" } }, "FAILED_PRECONDITION", "COLOCATION_MISMATCH", /users and orders use different shard functions/],
    ["another number of key columns", { policy: { shardKeys: ["user_id", "id"] } }, "FAILED_PRECONDITION", "COLOCATION_MISMATCH", /users has 1 shard key column\(s\) and orders 2/],
    ["another shard count", { shards: 2, placement: [["n1"], ["n2"]] }, "FAILED_PRECONDITION", "COLOCATION_MISMATCH", /users has 4 shards and orders 2/],
    ["another primary", { placement: [["n2", "n1", "n3"], ["n2", "n3", "n4"], ["n3", "n4", "n5"], ["n4", "n5", "n1"]] }, "FAILED_PRECONDITION", "COLOCATION_MISMATCH", /shard users-0000 is on \[n1, n2, n3\] \(primary n1\) but orders-0000 is on \[n2, n1, n3\] \(primary n2\)/],
  ] as const)("refuses %s", (_name, changes, code, reason, message) => {
    const error = refusal(() => checkColocated([users(), variant(changes as never)]));
    expect([error.code, error.reason]).toEqual([code, reason]);
    expect(error.message).toMatch(message);
  });
  test("refuses range tables whose split points differ", () => {
    const events = fixtureLayout(spec("events"));
    const shifted = fixtureLayout({ ...spec("events"), table: "events2", policy: { ...spec("events").policy, colocationGroup: "events", rangeSplitPoints: [100, 250, 300].map((v) => toValue(v)) } });
    const error = refusal(() => checkColocated([events, shifted]));
    expect([error.code, error.reason]).toEqual(["FAILED_PRECONDITION", "COLOCATION_MISMATCH"]);
    expect(error.message).toMatch(/shard events-0001 and events2-0001 own different key ranges/);
  });
});

describe("reference tables", () => {
  test("are replicated to every eligible node with one shard", () => {
    expect(isReferenceTable(fixtureLayout(spec("countries")))).toBe(true);
    expect(isReferenceTable(users())).toBe(false);
    expect(isReferenceTable(fixtureLayout({ ...spec("countries"), shards: 2, placement: [["n1"], ["n2"]] }))).toBe(false);
  });
});

describe("targets", () => {
  test("a shard whose primary is not registered is UNAVAILABLE (NO_PRIMARY)", () => {
    const snapshot = fixtureSnapshot();
    const sql = "SELECT * FROM users WHERE id = 1";
    const error = refusal(() => planStatement({ sql, params: [], analysis: analyze(sql, { dialect: "sqlite" }) }, { ...snapshot, nodeAddress: (node) => (node === "n2" ? undefined : "x:1") }));
    expect([error.code, error.reason, error.message]).toEqual(["UNAVAILABLE", "NO_PRIMARY", "shard users-0001 has no reachable primary (node n2 is not registered)"]);
  });
});

describe("range keys order text like SQLite (code points)", () => {
  test("a key above U+FFFF sorts after U+E000, so range pruning finds it", () => {
    const layout = fixtureLayout({
      ...spec("events"),
      table: "names",
      ddl: "CREATE TABLE names (k TEXT PRIMARY KEY)",
      policy: { shardKeys: ["k"], shardFunction: common.ShardFunction.SHARD_FUNCTION_RANGE, rangeSharding: true, rangeSplitPoints: ["\uE000", "😀"].map((v) => toValue(v)) },
      shards: 3,
      placement: [["n1"], ["n2"], ["n3"]],
    });
    expect(layout.shardForKey(["\uE001"]).index).toBe(1);
    expect(layout.shardForKey(["😀x"]).index).toBe(2);
    expect(layout.shardsFor({ kind: "ranges", ranges: [{ upper: { value: "😀", inclusive: false } }] }).map((s) => s.index)).toEqual([0, 1]);
  });
});
