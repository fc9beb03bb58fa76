import Database from "better-sqlite3";
import {
  analyze,
  bindParameters,
  createAnalysisCache,
  expandAvg,
  insertRowKeys,
  loadSqlParser,
  rewriteForMerge,
  splitInsert,
  splitInsertRows,
  toDialectSql,
  widenLimit,
  type MergeRewrite,
  type SqlValue,
} from "@mycelium/sql";

beforeAll(() => loadSqlParser());

describe("splitInsert", () => {
  test("keeps the chosen rows and renumbers parameters, keeping those of the rest of the statement", () => {
    const sql = "INSERT INTO t (k, v) VALUES (1, ?), (?, 'b'), (3, ?) ON CONFLICT (k) DO UPDATE SET v = ? RETURNING k";
    expect(splitInsert(sql, [2, 0], { dialect: "postgres", params: ["a", 2, "c", "u"] })).toEqual({
      sql: "INSERT INTO t (k, v) VALUES (1, ?), (3, ?) ON CONFLICT (k) DO UPDATE SET v = ? RETURNING k",
      params: ["a", "c", "u"],
      parameterIndexes: [0, 2, 3],
    });
  });
  test("keeps SQLite spelling and comments untouched", () => {
    const sql = "INSERT OR REPLACE INTO `t` (k, v) VALUES /* rows */ (1, 'x;y'), (2, '?')";
    expect(splitInsert(sql, [1], { dialect: "sqlite", params: [] }).sql).toBe("INSERT OR REPLACE INTO `t` (k, v) VALUES (2, '?')");
  });
  test("rejects what it cannot split", () => {
    expect(() => splitInsert("INSERT INTO t SELECT * FROM u", [0], { dialect: "sqlite", params: [] })).toThrow(expect.objectContaining({ code: "UNSUPPORTED" }));
    expect(() => splitInsert("INSERT INTO t (k) VALUES (1)", [1], { dialect: "sqlite", params: [] })).toThrow(/row index 1 is out of range: the INSERT has 1 rows/);
    expect(() => splitInsert("INSERT INTO t (k) VALUES (?)", [0], { dialect: "sqlite", params: [] })).toThrow(expect.objectContaining({ code: "PARAMETER_MISMATCH" }));
  });
});

describe("splitInsertRows", () => {
  test("splits into several parts from one reading, each with its own parameters", () => {
    const sql = "INSERT INTO t (k, v) VALUES (?, 'a'), (2, ?), (?, ?) ON CONFLICT (k) DO UPDATE SET v = ?";
    const params = [1, "b", 3, "c", "z"];
    const parts = splitInsertRows(sql, [[0, 2], [1]], { dialect: "sqlite", params, analysis: analyze(sql, { dialect: "sqlite" }) });
    expect(parts.map((p) => [p.sql, p.params])).toEqual([
      ["INSERT INTO t (k, v) VALUES (?, 'a'), (?, ?) ON CONFLICT (k) DO UPDATE SET v = ?", [1, 3, "c", "z"]],
      ["INSERT INTO t (k, v) VALUES (2, ?) ON CONFLICT (k) DO UPDATE SET v = ?", ["b", "z"]],
    ]);
    expect(parts[0]).toEqual(splitInsert(sql, [0, 2], { dialect: "sqlite", params }));
  });
});

describe("insertRowKeys", () => {
  test("gives each row's key tuple, using the table's columns when the INSERT lists none", () => {
    const a = analyze("INSERT INTO t VALUES (?, 'x', 1), (2, 'y', 1)", { dialect: "sqlite" });
    expect(insertRowKeys(a, ["k"], [9], ["k", "v", "n"])).toEqual([[9], [2]]);
    expect(() => insertRowKeys(a, ["k"], [9])).toThrow(/needs the table's columns/);
    const b = analyze("INSERT INTO t (v) VALUES ('x')", { dialect: "sqlite" });
    expect(() => insertRowKeys(b, ["k"], [])).toThrow(/does not give shard key column "k"/);
    const c = analyze("INSERT INTO t (k) VALUES (1 + 1)", { dialect: "sqlite" });
    expect(() => insertRowKeys(c, ["k"], [])).toThrow(/row 1 of INSERT INTO t: shard key "k" must be a literal or \? parameter/);
  });
});

describe("widenLimit", () => {
  test.each([
    ["SELECT * FROM t ORDER BY k LIMIT 10 OFFSET 20", [], "SELECT * FROM t ORDER BY k LIMIT 30", []],
    ["SELECT * FROM t ORDER BY k LIMIT ? OFFSET ?", [10, 20], "SELECT * FROM t ORDER BY k LIMIT 30", []],
    ["SELECT * FROM t WHERE a = ? ORDER BY k OFFSET ? LIMIT ?", ["x", 5, 5], "SELECT * FROM t WHERE a = ? ORDER BY k LIMIT 30", ["x"]],
    ["SELECT * FROM t ORDER BY k LIMIT 5, 10", [], "SELECT * FROM t ORDER BY k LIMIT 30", []],
    ["SELECT * FROM t ORDER BY k", [], "SELECT * FROM t ORDER BY k LIMIT 30", []],
    ["SELECT * FROM (SELECT * FROM t LIMIT 3) s ORDER BY k LIMIT 1;", [], "SELECT * FROM (SELECT * FROM t LIMIT 3) s ORDER BY k LIMIT 30;", []],
  ] as Array<[string, SqlValue[], string, SqlValue[]]>)("%s", (sql, params, expected, expectedParams) => {
    const result = widenLimit(sql, 30, { dialect: "sqlite", params });
    expect(result.sql).toBe(expected);
    expect(result.params).toEqual(expectedParams);
    expect(analyze(result.sql, { dialect: "sqlite" }).select!.limit).toEqual({ kind: "value", value: 30 });
  });
  test("keeps FOR UPDATE after the limit (postgres)", () => {
    expect(widenLimit("SELECT * FROM t ORDER BY k LIMIT 1 OFFSET 1 FOR UPDATE", 2, { dialect: "postgres", params: [] }).sql).toBe(
      "SELECT * FROM t ORDER BY k LIMIT 2 FOR UPDATE",
    );
  });
  test("rejects non-SELECT and bad limits", () => {
    expect(() => widenLimit("DELETE FROM t", 1, { dialect: "sqlite", params: [] })).toThrow(expect.objectContaining({ code: "UNSUPPORTED" }));
    expect(() => widenLimit("SELECT 1", -1, { dialect: "sqlite", params: [] })).toThrow(/non-negative integer/);
  });
});

/**
 * A minimal merger, enough to check that expandAvg reports the right positions: runs the rewritten query on
 * each shard, groups by the group keys, merges aggregates, computes AVG, sorts, drops hidden columns.
 */
function scatterGather(shards: Database.Database[], rewrite: MergeRewrite): unknown[][] {
  const rows = shards.flatMap((db) => db.prepare(rewrite.sql).raw(true).all(...rewrite.params) as unknown[][]);
  const h = rewrite.hidden.length;
  const aggregateAt = new Map<number, string>();
  rewrite.hidden.forEach((c, i) => c.aggregate && aggregateAt.set(i, c.aggregate));
  rewrite.outputs.forEach((o) => {
    if (o.kind === "avg") {
      aggregateAt.set(o.sumIndex, "sum");
      aggregateAt.set(o.countIndex, "count");
    } else if (o.aggregate && o.index !== null) aggregateAt.set(o.index, o.aggregate);
  });
  const grouped = new Map<string, unknown[]>();
  for (const row of rows) {
    const key = JSON.stringify(rewrite.groupBy.map((i) => row[i]));
    const existing = grouped.get(key);
    if (!existing) {
      grouped.set(key, [...row]);
      continue;
    }
    for (const [i, aggregate] of aggregateAt) {
      const a = existing[i] as number | null;
      const b = row[i] as number | null;
      if (aggregate === "count" || aggregate === "sum") existing[i] = a === null ? b : b === null ? a : a + b;
      else if (aggregate === "min") existing[i] = a === null ? b : b === null ? a : Math.min(a, b);
      else if (aggregate === "max") existing[i] = a === null ? b : b === null ? a : Math.max(a, b);
    }
  }
  const merged = [...grouped.values()];
  merged.sort((x, y) => {
    for (const { index, descending } of rewrite.orderBy) {
      const a = x[index] as number;
      const b = y[index] as number;
      if (a !== b) return (a < b ? -1 : 1) * (descending ? -1 : 1);
    }
    return 0;
  });
  return merged.map((row) =>
    rewrite.outputs.map((o) => {
      if (o.kind === "avg") {
        const count = row[o.countIndex] as number;
        return count === 0 ? null : (row[o.sumIndex] as number) / count;
      }
      return row[o.index!];
    }),
  );
}

describe("expandAvg", () => {
  const data: Array<[number, string, string, number, number]> = [];
  for (let i = 0; i < 60; i++) data.push([i, ["eng", "ops", "sales"][i % 3]!, ["eu", "us"][i % 2]!, 20 + ((i * 7) % 40), 1000 + ((i * 37) % 500)]);
  let shards: Database.Database[];
  let single: Database.Database;
  beforeAll(() => {
    const open = () => {
      const db = new Database(":memory:");
      db.exec("CREATE TABLE emp (id INTEGER PRIMARY KEY, dept TEXT, region TEXT, age INTEGER, salary INTEGER)");
      return db;
    };
    single = open();
    shards = [open(), open(), open()];
    for (const row of data) {
      single.prepare("INSERT INTO emp VALUES (?, ?, ?, ?, ?)").run(...row);
      shards[row[0] % 3]!.prepare("INSERT INTO emp VALUES (?, ?, ?, ?, ?)").run(...row);
    }
  });
  afterAll(() => [single, ...shards].forEach((db) => db.close()));

  test.each([
    ["SELECT dept, AVG(salary) AS a, COUNT(*) AS n FROM emp GROUP BY dept ORDER BY dept", []],
    ["SELECT AVG(age), MIN(salary), MAX(salary), SUM(age), COUNT(*) FROM emp WHERE age > ?", [30]],
    ["SELECT dept, SUM(salary) FROM emp GROUP BY dept, region ORDER BY MAX(age) DESC, 2", []],
    ["SELECT region, avg(age) FROM emp GROUP BY 1 ORDER BY 2 DESC", []],
    ["SELECT COUNT(*) FROM emp GROUP BY dept ORDER BY dept DESC", []],
  ] as Array<[string, SqlValue[]]>)("%s merges to the single-database answer", (sql, params) => {
    const rewrite = expandAvg(sql, { dialect: "sqlite", params });
    const expected = single.prepare(sql).raw(true).all(...params) as unknown[][];
    const actual = scatterGather(shards, rewrite);
    expect(actual.length).toBe(expected.length);
    actual.forEach((row, r) => row.forEach((value, c) => {
      const want = expected[r]![c];
      if (typeof want === "number") expect(value as number).toBeCloseTo(want, 9);
      else expect(value).toEqual(want);
    }));
  });

  test("reports hidden columns and positions", () => {
    const plain = expandAvg("SELECT dept, AVG(salary) AS a FROM emp WHERE age > ? GROUP BY dept, region ORDER BY MAX(age) DESC", { dialect: "sqlite", params: [30] });
    expect(plain.sql).toBe("SELECT COUNT(salary), region, MAX(age), dept, SUM(salary) AS a FROM emp WHERE age > ? GROUP BY dept, region ORDER BY MAX(age) DESC");
    expect(plain.params).toEqual([30]);
    expect(plain.hidden).toEqual([
      { expression: "COUNT(salary)", role: "avg_count", aggregate: "count" },
      { expression: "region", role: "group_by" },
      { expression: "MAX(age)", role: "order_by", aggregate: "max" },
    ]);
    expect(plain.outputs).toEqual([{ kind: "column", index: 3 }, { kind: "avg", sumIndex: 4, countIndex: 0 }]);
    expect(plain.groupBy).toEqual([3, 1]);
    expect(plain.orderBy).toEqual([{ index: 2, descending: true }]);
  });

  test("puts hidden keys before a * so their positions are known", () => {
    const rewrite = expandAvg("SELECT * FROM emp ORDER BY age NULLS FIRST", { dialect: "postgres", params: [] });
    expect(rewrite.sql).toBe("SELECT age, * FROM emp ORDER BY age NULLS FIRST");
    expect(rewrite.orderBy).toEqual([{ index: 0, descending: false, nullsFirst: true }]);
    expect(rewrite.outputs).toEqual([{ kind: "column", index: null }]);
  });

  test("refuses what it cannot merge", () => {
    const reject = (sql: string, message: RegExp) =>
      expect(() => expandAvg(sql, { dialect: "sqlite", params: [] })).toThrow(expect.objectContaining({ code: "UNSUPPORTED", message: expect.stringMatching(message) }));
    reject("SELECT a FROM t UNION SELECT a FROM u", /UNION/);
    reject("SELECT DISTINCT dept FROM emp ORDER BY age", /SELECT DISTINCT ordered by "age"/);
    reject("SELECT *, AVG(age) FROM emp", /follows a \*/);
    reject("SELECT AVG(age) FILTER (WHERE age > 1) FROM emp", /FILTER or OVER/);
  });
});

describe("rewriteForMerge", () => {
  const rewrite = (sql: string, options: { params?: SqlValue[]; combineAggregates?: boolean; limit?: number | null; dialect?: "sqlite" | "postgres" } = {}) =>
    rewriteForMerge(sql, { dialect: options.dialect ?? "sqlite", params: options.params ?? [], ...(options.combineAggregates === undefined ? {} : { combineAggregates: options.combineAggregates }), ...(options.limit === undefined ? {} : { limit: options.limit }) });

  test("removes HAVING and hides its aggregates, with positions for the merger", () => {
    const r = rewrite("SELECT dept, COUNT(*) AS n FROM emp GROUP BY dept HAVING COUNT(*) > ? AND avg(age) < 40 OR n = 1 ORDER BY n DESC LIMIT 3", { params: [2], limit: null });
    expect(r.sql).toBe("SELECT COUNT(*), COUNT(age), SUM(age), dept, COUNT(*) AS n FROM emp GROUP BY dept ORDER BY n DESC");
    expect(r.params).toEqual([]);
    expect(r.hidden).toEqual([
      { expression: "COUNT(*)", role: "having", aggregate: "count" },
      { expression: "COUNT(age)", role: "avg_count", aggregate: "count" },
      { expression: "SUM(age)", role: "having", aggregate: "avg", countIndex: 1 },
    ]);
    expect(r.having).toEqual({
      kind: "or",
      parts: [
        {
          kind: "and",
          parts: [
            { kind: "compare", op: ">", left: { kind: "column", index: 0 }, right: { kind: "param", index: 0 } },
            { kind: "compare", op: "<", left: { kind: "column", index: 2 }, right: { kind: "value", value: 40 } },
          ],
        },
        { kind: "compare", op: "=", left: { kind: "column", index: 4 }, right: { kind: "value", value: 1 } },
      ],
    });
    expect(r.orderBy).toEqual([{ index: 4, descending: true }]);
  });

  test("keeps a FILTER clause with its aggregate", () => {
    const r = rewrite("SELECT dept FROM emp GROUP BY dept HAVING count(*) FILTER (WHERE age > ?) >= 1", { params: [30], dialect: "postgres" });
    expect(r.sql).toBe("SELECT count(*) FILTER (WHERE age > ?), dept FROM emp GROUP BY dept");
    expect(r.params).toEqual([30]);
  });

  test("sets or removes the LIMIT", () => {
    const r = rewrite("SELECT id, age FROM emp WHERE age > ? ORDER BY id LIMIT ? OFFSET ?", { params: [3, 5, 10], limit: 15 });
    expect([r.sql, r.params]).toEqual(["SELECT id, age FROM emp WHERE age > ? ORDER BY id LIMIT 15", [3]]);
    expect(rewrite("SELECT id FROM emp ORDER BY id LIMIT 5 OFFSET 10", { limit: null }).sql).toBe("SELECT id FROM emp ORDER BY id");
    expect(rewrite("SELECT id FROM emp ORDER BY id LIMIT 10, 5", { limit: null }).sql).toBe("SELECT id FROM emp ORDER BY id");
    expect(rewrite("SELECT id FROM emp ORDER BY id", { limit: 7 }).sql).toBe("SELECT id FROM emp ORDER BY id LIMIT 7");
    expect(rewrite("SELECT id FROM emp ORDER BY id OFFSET 2 FOR UPDATE", { limit: 7, dialect: "postgres" }).sql).toBe("SELECT id FROM emp ORDER BY id LIMIT 7 FOR UPDATE");
    expect(rewrite("SELECT * FROM emp ORDER BY id LIMIT 2", { limit: 2 }).sql).toBe("SELECT id, * FROM emp ORDER BY id LIMIT 2");
  });

  test("without combining, rows are final: AVG, GROUP BY and HAVING stay, only sort keys are hidden", () => {
    const r = rewrite("SELECT id, AVG(age) FROM emp GROUP BY id HAVING count(*) > 1 ORDER BY max(age) DESC LIMIT 2 OFFSET 1", { combineAggregates: false, limit: 3 });
    expect(r.sql).toBe("SELECT max(age), id, AVG(age) FROM emp GROUP BY id HAVING count(*) > 1 ORDER BY max(age) DESC LIMIT 3");
    expect(r.hidden).toEqual([{ expression: "max(age)", role: "order_by", aggregate: "max" }]);
    expect(r.groupBy).toEqual([]);
    expect(r.having).toBeUndefined();
  });

  test("hides ORDER BY AVG(x) as a SUM and a COUNT", () => {
    const r = rewrite("SELECT dept FROM emp GROUP BY dept ORDER BY AVG(age) DESC");
    expect(r.sql).toBe("SELECT COUNT(age), SUM(age), dept FROM emp GROUP BY dept ORDER BY AVG(age) DESC");
    expect(r.orderBy).toEqual([{ index: 1, descending: true }]);
    expect(r.hidden[1]).toEqual({ expression: "SUM(age)", role: "order_by", aggregate: "avg", countIndex: 0 });
  });

  test("refuses HAVING and ORDER BY it cannot evaluate", () => {
    const reject = (sql: string, message: RegExp) =>
      expect(() => rewrite(sql)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", message: expect.stringMatching(message) }));
    reject("SELECT dept FROM emp GROUP BY dept HAVING dept > 'a'", /HAVING \(dept > 'a'\) cannot be evaluated/);
    reject("SELECT dept FROM emp GROUP BY dept HAVING total(age) > 1", /total\(age\).*only COUNT, SUM, MIN, MAX, AVG/);
    reject("SELECT dept FROM emp GROUP BY dept HAVING count(DISTINCT age) > 1", /count\(DISTINCT age\)/);
    reject("SELECT dept FROM emp GROUP BY dept ORDER BY count(*) * 2", /ORDER BY .* cannot be combined/);
  });
});

describe("dialect helpers", () => {
  test("toDialectSql turns ? into $n outside strings, names and comments", () => {
    expect(toDialectSql("SELECT '?', \"a?\" FROM t WHERE a = ? /* ? */ AND b IN (?, ?) -- ?\n AND `c` == ?", "sqlite", "postgres")).toBe(
      "SELECT '?', \"a?\" FROM t WHERE a = $1 /* ? */ AND b IN ($2, $3) -- ?\n AND \"c\" = $4",
    );
    expect(toDialectSql("SELECT ?", "sqlite", "sqlite")).toBe("SELECT ?");
  });
  test("bindParameters writes literals for each dialect", () => {
    const params: SqlValue[] = [null, 1.5, -2, "it's", true, new Uint8Array([1, 255]), 12345678901234567890n];
    const sql = "SELECT ?, ?, 1-?, ?, ?, ?, ?";
    expect(bindParameters(sql, params, "sqlite")).toBe("SELECT NULL, 1.5, 1- -2, 'it''s', 1, X'01ff', 12345678901234567890");
    expect(bindParameters(sql, params, "postgres")).toBe("SELECT NULL, 1.5, 1- -2, 'it''s', TRUE, '\\x01ff'::bytea, 12345678901234567890");
    expect(() => bindParameters("SELECT ?", [], "sqlite")).toThrow(expect.objectContaining({ code: "PARAMETER_MISMATCH" }));
    const db = new Database(":memory:");
    expect(db.prepare(bindParameters(sql, params.slice(0, 6).concat([7]), "sqlite")).raw(true).get()).toEqual([null, 1.5, 3, "it's", 1, Buffer.from([1, 255]), 7]);
    db.close();
  });
});

describe("analysis cache", () => {
  test("hits on the same text and dialect, evicts the least recently used, checks parameters on hits", () => {
    const cache = createAnalysisCache({ maxEntries: 2 });
    const a = cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite" });
    expect(cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite", params: [1] })).toBe(a);
    cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "postgres" });
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, size: 2 });
    cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite" }); // hit: now most recent
    cache.analyze("SELECT 1", { dialect: "sqlite" }); // evicts the postgres entry
    cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite" });
    expect(cache.stats()).toEqual({ hits: 3, misses: 3, size: 2 });
    cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "postgres" });
    expect(cache.stats().misses).toBe(4);
    expect(() => cache.analyze("SELECT * FROM t WHERE k = ?", { dialect: "postgres", params: [] })).toThrow(expect.objectContaining({ code: "PARAMETER_MISMATCH" }));
    expect(() => cache.analyze("SELEC", { dialect: "sqlite" })).toThrow(expect.objectContaining({ code: "PARSE_ERROR" }));
    expect(cache.stats().size).toBe(2);
    expect(() => createAnalysisCache({ maxEntries: 0 })).toThrow(/positive integer/);
  });
});
