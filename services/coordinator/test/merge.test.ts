import { router, toValue, type SqlValue } from "@mycelium/proto";
import { isMyceliumError } from "@mycelium/rpc";
import { mergeResults, type ShardRows } from "../src/core/merge";
import { compareSqlValues, compareText } from "../src/core/merge-values";

const { AGGREGATE_KIND_NONE: NONE, AGGREGATE_KIND_COUNT: COUNT, AGGREGATE_KIND_SUM: SUM, AGGREGATE_KIND_MIN: MIN, AGGREGATE_KIND_MAX: MAX, AGGREGATE_KIND_AVG: AVG } = router.AggregateKind;

const part = (columns: string[], ...rows: SqlValue[][]): ShardRows => ({ columns, rows });
const column = (aggregate: router.AggregateKind, sourceIndex: number, countIndex = 0, name = "") => router.OutputColumn.create({ aggregate, sourceIndex, countIndex, name });
const sort = (columnIndex: number, descending = false, nullsFirst = !descending) => router.SortKey.create({ columnIndex, descending, nullsFirst });
const plan = (fields: Partial<router.MergePlan>) => router.MergePlan.create(fields);
const compare = (operator: router.ComparisonOperator, left: number, right: SqlValue): router.MergeCondition =>
  router.MergeCondition.create({
    kind: { $case: "compare", value: { operator, left: { kind: { $case: "columnIndex", value: left } }, right: { kind: { $case: "value", value: toValue(right) } } } },
  });

describe("value order (SQLite's)", () => {
  test("NULL < numbers < text < blobs, integers and reals compared exactly", () => {
    const values: SqlValue[] = [new Uint8Array([1]), "b", "a", 2n ** 63n - 1n, 2 ** 53, 2 ** 53 + 0.5, 1.5, 1, -3n, null, ""];
    const sorted = [...values].sort(compareSqlValues);
    expect(sorted).toEqual([null, -3n, 1, 1.5, 2 ** 53, 2 ** 53 + 0.5, 2n ** 63n - 1n, "", "a", "b", new Uint8Array([1])]);
    expect(compareSqlValues(2n ** 60n, 2 ** 60)).toBe(0);
    expect(compareSqlValues(2n ** 60n + 1n, 2 ** 60)).toBe(1);
  });
  test("text in code point (UTF-8 byte) order, not UTF-16 order", () => {
    expect(compareText("\uE000", "😀")).toBeLessThan(0); // U+E000 < U+1F600
    expect("\uE000" < "😀").toBe(false); // what plain JavaScript would say
    expect(compareText("B", "a")).toBeLessThan(0);
    expect(compareText("ab", "a")).toBeGreaterThan(0);
  });
});

describe("mergeResults", () => {
  test("without a plan, concatenates", () => {
    expect(mergeResults(undefined, [part(["a"], [1]), part(["a"], [2], [3])])).toEqual({ columns: ["a"], rows: [[1], [2], [3]] });
  });

  test("k-way merge honours DESC and NULLS FIRST / LAST, applies OFFSET and LIMIT, drops hidden columns", () => {
    const shards = [part(["h", "x"], [3, "c"], [1, "a"], [null, "n1"]), part(["h", "x"], [2, "b"], [null, "n2"]), part(["h", "x"])];
    const merged = mergeResults(plan({ orderBy: [sort(0, true, false)], hiddenColumnCount: 1, hasLimit: true, limit: 3, offset: 1 }), shards);
    expect(merged).toEqual({ columns: ["x"], rows: [["b"], ["a"], ["n1"]] });
    const nullsFirst = mergeResults(plan({ orderBy: [sort(0, true, true)], hiddenColumnCount: 1 }), [
      part(["h", "x"], [null, "n1"], [3, "c"], [1, "a"]),
      part(["h", "x"], [null, "n2"], [2, "b"]),
    ]);
    expect(nullsFirst.rows.map((r) => r[0])).toEqual(["n1", "n2", "c", "b", "a"]);
  });

  test("a shard whose rows are not in the plan's order is a broken invariant", () => {
    expect(() => mergeResults(plan({ orderBy: [sort(0)] }), [part(["x"], [2], [1]), part(["x"], [0])])).toThrow(/out of the plan's order/);
  });

  test("rows of the wrong width are a broken invariant", () => {
    expect(() => mergeResults(plan({}), [part(["x", "y"], [1, 2]), part(["x", "y"], [1])])).toThrow(/has 1 values, expected 2/);
  });

  test("DISTINCT keeps the first of equal rows, treating 1 and 1.0 as equal and NULLs as equal", () => {
    const merged = mergeResults(plan({ distinct: true }), [part(["x", "y"], [1, null], [2, "a"]), part(["x", "y"], [1.0, null], [2, "A"], [2n, "a"])]);
    expect(merged.rows).toEqual([[1, null], [2, "a"], [2, "A"]]);
  });

  test("DISTINCT with LIMIT in a sorted merge counts distinct rows", () => {
    const merged = mergeResults(plan({ distinct: true, orderBy: [sort(0)], hasLimit: true, limit: 2 }), [part(["x"], [1], [2], [3]), part(["x"], [1], [2], [4])]);
    expect(merged.rows).toEqual([[1], [2]]);
  });

  test("aggregates: COUNT adds, SUM stays an exact integer, MIN/MAX ignore NULL, AVG is Σsum/Σcount", () => {
    const columns = [column(COUNT, 0), column(NONE, 1), column(COUNT, 2), column(SUM, 3), column(MIN, 4), column(MAX, 5), column(AVG, 6, 0, "AVG(x)")];
    const shards = [
      part(["c", "k", "n", "s", "mn", "mx", "SUM(x)"], [2, "a", 2, 2n ** 53n, null, "x", 10], [1, "b", 1, 5, 3, null, 5]),
      part(["c", "k", "n", "s", "mn", "mx", "SUM(x)"], [2, "a", 3, 1, 1, "y", 4]),
      part(["c", "k", "n", "s", "mn", "mx", "SUM(x)"], [0, "b", 0, null, null, null, null]),
    ];
    const merged = mergeResults(plan({ aggregate: true, columns, groupBy: [1], hiddenColumnCount: 1, orderBy: [sort(1)] }), shards);
    expect(merged.columns).toEqual(["k", "n", "s", "mn", "mx", "AVG(x)"]);
    expect(merged.rows).toEqual([
      ["a", 5, 2n ** 53n + 1n, 1, "y", 14 / 4],
      ["b", 1, 5, 3, null, 5],
    ]);
  });

  test("SUM of only NULLs is NULL, COUNT of nothing is 0, AVG of nothing is NULL", () => {
    const merged = mergeResults(plan({ aggregate: true, columns: [column(COUNT, 0), column(SUM, 1), column(COUNT, 2), column(AVG, 3, 0)], hiddenColumnCount: 1 }), [
      part(["c", "s", "n", "a"], [0, null, 0, null]),
      part(["c", "s", "n", "a"], [0, null, 0, null]),
    ]);
    expect(merged.rows).toEqual([[null, 0, null]]);
  });

  test("SUM mixing reals stays real; decimal text (PostgreSQL numeric) is added exactly", () => {
    const real = mergeResults(plan({ aggregate: true, columns: [column(SUM, 0)] }), [part(["s"], [1]), part(["s"], [0.5])]);
    expect(real.rows).toEqual([[1.5]]);
    const decimal = mergeResults(plan({ aggregate: true, columns: [column(SUM, 0)] }), [part(["s"], ["12345678901234567890.10"]), part(["s"], ["0.005"]), part(["s"], [-1])]);
    expect(decimal.rows).toEqual([["12345678901234567889.105"]]);
  });

  test("a SUM beyond 64 bits is an error, as in SQLite", () => {
    try {
      mergeResults(plan({ aggregate: true, columns: [column(SUM, 0)] }), [part(["s"], [2n ** 62n]), part(["s"], [2n ** 62n])]);
      throw new Error("no error");
    } catch (error) {
      expect(isMyceliumError(error) && error.code === "INVALID_ARGUMENT" && error.reason === "INTEGER_OVERFLOW").toBe(true);
    }
  });

  test("HAVING is evaluated with three-valued logic on combined groups", () => {
    const { COMPARISON_OPERATOR_GREATER: GT } = router.ComparisonOperator;
    const not = (c: router.MergeCondition) => router.MergeCondition.create({ kind: { $case: "not", value: c } });
    const shards = [part(["k", "s"], ["a", 3], ["b", null], ["c", 1]), part(["k", "s"], ["a", 3], ["c", 1])];
    const columns = [column(NONE, 0), column(SUM, 1)];
    const kept = (having: router.MergeCondition) => mergeResults(plan({ aggregate: true, columns, groupBy: [0], having }), shards).rows.map((r) => r[0]);
    expect(kept(compare(GT, 1, 4))).toEqual(["a"]);
    // NOT (NULL > 4) is unknown: group b stays out either way.
    expect(kept(not(compare(GT, 1, 4)))).toEqual(["c"]);
    // A number is less than any text (SQLite compares aggregates without affinity).
    expect(kept(compare(GT, 1, "1"))).toEqual([]);
  });

  test("ORDER BY after grouping sorts the combined values, then LIMIT", () => {
    const columns = [column(NONE, 0), column(COUNT, 1)];
    const merged = mergeResults(plan({ aggregate: true, columns, groupBy: [0], orderBy: [sort(1, true, false), sort(0)], hasLimit: true, limit: 2 }), [
      part(["k", "n"], ["a", 1], ["b", 5], ["c", 2]),
      part(["k", "n"], ["a", 4], ["c", 3]),
    ]);
    expect(merged.rows).toEqual([["a", 5], ["b", 5]]);
  });
});
