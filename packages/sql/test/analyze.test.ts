import {
  analyze,
  assertDeterministic,
  loadSqlParser,
  shardKeyPredicate,
  SqlError,
  type Analysis,
  type Dialect,
  type KeyPredicate,
  type SqlValue,
} from "@mycelium/sql";

/**
 * One table of cases, run against every dialect the case names (both by default). `expect` is matched
 * partially (toMatchObject); `reads` / `writes` compare the read and write sets as sorted "table.column";
 * `key` checks shardKeyPredicate; `error` expects a SqlError with that code and message.
 */
interface Case {
  sql: string;
  dialects?: Dialect[];
  expect?: Record<string, unknown>;
  reads?: string[];
  writes?: string[];
  key?: { table: string; columns: string[]; params?: SqlValue[]; predicate: KeyPredicate };
  error?: { code: SqlError["code"]; message: RegExp };
}

const both: Dialect[] = ["sqlite", "postgres"];
const sqliteOnly: Dialect[] = ["sqlite"];
const postgresOnly: Dialect[] = ["postgres"];
const pts = (...values: SqlValue[]): KeyPredicate => ({ kind: "points", values: values.map((v) => [v]) });
const ALL: KeyPredicate = { kind: "all" };
const NONE: KeyPredicate = { kind: "none" };

const cases: Case[] = [
  // ----- DDL
  {
    sql: "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INT)",
    expect: {
      kind: "ddl",
      isWrite: true,
      tables: ["users"],
      ddl: {
        action: "create_table",
        table: "users",
        ifNotExists: true,
        primaryKey: ["id"],
        columns: [
          { name: "id", type: "INTEGER", primaryKey: true, notNull: true },
          { name: "name", type: "TEXT", notNull: true, primaryKey: false },
          { name: "age", type: "INT", notNull: false, primaryKey: false },
        ],
      },
    },
    writes: ["users.*"],
  },
  {
    sql: "CREATE TABLE orders (tenant INT, id BIGINT, total NUMERIC(10, 2), note VARCHAR(200), PRIMARY KEY (tenant, id))",
    expect: {
      ddl: {
        action: "create_table",
        table: "orders",
        ifNotExists: false,
        primaryKey: ["tenant", "id"],
        columns: [
          { name: "tenant", type: "INT", primaryKey: true },
          { name: "id", type: "BIGINT", primaryKey: true },
          { name: "total", type: "NUMERIC(10, 2)", primaryKey: false },
          { name: "note", type: "VARCHAR(200)" },
        ],
      },
    },
  },
  {
    sql: "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB) WITHOUT ROWID",
    dialects: sqliteOnly,
    expect: { ddl: { action: "create_table", table: "t", primaryKey: ["id"], columns: [{ name: "id", type: "INTEGER" }, { name: "b", type: "BLOB" }] } },
  },
  {
    sql: 'CREATE TABLE "Mixed" ("Id" INT PRIMARY KEY, val TEXT)',
    expect: { tables: ["Mixed"], ddl: { table: "Mixed", primaryKey: ["Id"] } },
  },
  {
    sql: "CREATE TABLE events (id INT PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP)",
    expect: { kind: "ddl", nondeterministic: ["current_timestamp"] },
  },
  { sql: "DROP TABLE t", expect: { kind: "ddl", tables: ["t"], ddl: { action: "drop_table", table: "t", ifExists: false } }, writes: ["t.*"] },
  { sql: "DROP TABLE IF EXISTS t", expect: { ddl: { action: "drop_table", table: "t", ifExists: true } } },
  {
    sql: "CREATE INDEX idx_a ON t (a)",
    expect: { kind: "ddl", tables: ["t"], ddl: { action: "create_index", table: "t", index: "idx_a", ifNotExists: false } },
    reads: ["t.a"],
  },
  {
    sql: "CREATE UNIQUE INDEX IF NOT EXISTS idx_ab ON t (a, b)",
    expect: { ddl: { action: "create_index", table: "t", index: "idx_ab", ifNotExists: true } },
    reads: ["t.a", "t.b"],
  },
  { sql: "DROP INDEX idx_a", expect: { kind: "ddl", ddl: { action: "drop_index", index: "idx_a" } } },
  {
    sql: "ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT 'x'",
    expect: { kind: "ddl", ddl: { action: "alter_table", table: "t", addedColumns: [{ name: "c", type: "TEXT", notNull: true }] } },
    writes: ["t.*"],
  },
  { sql: "ALTER TABLE t ADD c INTEGER", expect: { ddl: { action: "alter_table", addedColumns: [{ name: "c", type: "INTEGER" }] } } },
  { sql: "CREATE VIEW v AS SELECT a FROM t", expect: { kind: "ddl", isWrite: true, ddl: { action: "other" } } },

  // ----- INSERT
  {
    sql: "INSERT INTO t (k, v) VALUES (1, 'a')",
    expect: { kind: "insert", isWrite: true, tables: ["t"], parameterCount: 0, insert: { table: "t", columns: ["k", "v"], rows: [[{ kind: "value", value: 1 }, { kind: "value", value: "a" }]], onConflict: false, returning: false } },
    writes: ["t.k", "t.v"],
    reads: [],
    key: { table: "t", columns: ["k"], predicate: pts(1) },
  },
  {
    sql: "INSERT INTO t (k, v) VALUES (1, 'a'), (?, ?), (-3, NULL), (2.5, X'0aff')",
    expect: {
      parameterCount: 2,
      insert: {
        rows: [
          [{ kind: "value", value: 1 }, { kind: "value", value: "a" }],
          [{ kind: "param", index: 0 }, { kind: "param", index: 1 }],
          [{ kind: "value", value: -3 }, { kind: "value", value: null }],
          [{ kind: "value", value: 2.5 }, { kind: "value", value: new Uint8Array([0x0a, 0xff]) }],
        ],
      },
    },
    key: { table: "t", columns: ["k"], params: [7, "b"], predicate: pts(1, 7, -3, 2.5) },
  },
  {
    sql: "INSERT INTO t (k, v) VALUES (?, 'a'), (?, 'b'), (?, 'c')",
    key: { table: "t", columns: ["k"], params: [5, 5, 6], predicate: pts(5, 6) },
  },
  {
    sql: "INSERT INTO t (a, b, v) VALUES (1, 2, 'x'), (1, 3, 'y')",
    key: { table: "t", columns: ["a", "b"], predicate: { kind: "points", values: [[1, 2], [1, 3]] } },
  },
  { sql: "INSERT INTO t (v) VALUES ('x')", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "INSERT INTO t (k, v) VALUES (abs(-1), 'x')", key: { table: "t", columns: ["k"], predicate: ALL } },
  {
    sql: "INSERT INTO t VALUES (1, 'x')",
    expect: { insert: { columns: null } },
    writes: ["t.*"],
  },
  {
    sql: "INSERT INTO t (k, v) SELECT k, v FROM u WHERE k = 3",
    expect: { kind: "insert", tables: ["t", "u"], insert: { rows: null } },
    reads: ["u.k", "u.v"],
    writes: ["t.k", "t.v"],
    key: { table: "u", columns: ["k"], predicate: pts(3) },
  },
  {
    sql: "INSERT OR REPLACE INTO t (k, v) VALUES (1, 'x')",
    dialects: sqliteOnly,
    expect: { kind: "insert", insert: { onConflict: true, conflictAction: "replace" }, fingerprint: "insert or replace into t (k, v) values (?, ?)" },
    writes: ["t.*", "t.k", "t.v"],
  },
  { sql: "INSERT OR IGNORE INTO t (k) VALUES (1)", dialects: sqliteOnly, expect: { insert: { onConflict: true, conflictAction: "ignore" } } },
  { sql: "REPLACE INTO t (k) VALUES (1)", dialects: sqliteOnly, expect: { kind: "insert", insert: { onConflict: true, conflictAction: "replace" } } },
  {
    sql: "INSERT OR REPLACE INTO t (k) VALUES (1)",
    dialects: postgresOnly,
    error: { code: "PARSE_ERROR", message: /syntax error at or near "OR" \(line 1, column 8\)/ },
  },
  {
    sql: "INSERT INTO t (k, v) VALUES (1, 'x') ON CONFLICT (k) DO NOTHING",
    expect: { insert: { onConflict: true, conflictAction: "nothing", conflictUpdateColumns: [] } },
    reads: ["t.k"],
  },
  {
    sql: "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = t.n + 1",
    expect: { insert: { onConflict: true, conflictAction: "update", conflictUpdateColumns: ["v", "n"] } },
    writes: ["t.k", "t.n", "t.v"],
    reads: ["t.k", "t.n"],
  },
  {
    sql: "INSERT INTO t (k, v) VALUES (1, 'x') RETURNING k, v",
    expect: { insert: { returning: true } },
    reads: ["t.k", "t.v"],
  },
  {
    sql: "INSERT INTO t (k, created) VALUES (1, datetime('now'))",
    dialects: sqliteOnly,
    expect: { nondeterministic: ["datetime('now')"] },
  },
  { sql: "INSERT INTO t (k, v) VALUES (1, random())", expect: { nondeterministic: ["random"] } },
  { sql: "INSERT INTO t (id, k) VALUES (gen_random_uuid(), 1)", dialects: postgresOnly, expect: { nondeterministic: ["gen_random_uuid"] } },
  { sql: "INSERT INTO t (id, k) VALUES (nextval('seq'), 1)", dialects: postgresOnly, expect: { nondeterministic: ["nextval"] } },
  { sql: "INSERT INTO t (k, at) VALUES (1, now())", expect: { nondeterministic: ["now"] } },
  { sql: "INSERT INTO t (k, at) VALUES (1, 'now'::timestamptz)", dialects: postgresOnly, expect: { nondeterministic: ["'now'::timestamptz"] } },
  { sql: "INSERT INTO t (k, v) VALUES (1, 'now')", expect: { nondeterministic: [] } },
  { sql: "INSERT INTO t (k, v) VALUES (1, 2)", error: undefined, expect: { nondeterministic: [] } },

  // ----- SELECT: kinds, tables, read sets, predicates
  {
    sql: "SELECT * FROM t WHERE k = 5",
    expect: { kind: "select", isWrite: false, tables: ["t"], writeSet: [], fingerprint: "select * from t where k = ?" },
    reads: ["t.*", "t.k"],
    key: { table: "t", columns: ["k"], predicate: pts(5) },
  },
  { sql: "SELECT * FROM t WHERE 5 = k", key: { table: "t", columns: ["k"], predicate: pts(5) } },
  { sql: "SELECT * FROM t WHERE k = ?", key: { table: "t", columns: ["k"], params: ["abc"], predicate: pts("abc") } },
  { sql: "SELECT * FROM t WHERE k IN (1, 2, ?)", key: { table: "t", columns: ["k"], params: [3], predicate: pts(1, 2, 3) } },
  { sql: "SELECT * FROM t WHERE k IN (1, NULL)", key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: "SELECT * FROM t WHERE k = NULL", key: { table: "t", columns: ["k"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k = 1 AND k = 2", key: { table: "t", columns: ["k"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k = 1 OR k = 2", key: { table: "t", columns: ["k"], predicate: pts(1, 2) } },
  { sql: "SELECT * FROM t WHERE (k = 1 OR k = 2) AND k IN (2, 3)", key: { table: "t", columns: ["k"], predicate: pts(2) } },
  { sql: "SELECT * FROM t WHERE k = 1 OR v = 'x'", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k = 1 AND v = 'x'", key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: "SELECT * FROM t WHERE NOT (k = 1)", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k <> 1", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k NOT IN (1, 2)", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k LIKE '1%'", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k IS NULL", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k + 0 = 5", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE abs(k) = 5", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k = v", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k = (SELECT max(k) FROM u)", expect: { select: { hasSubquery: true } }, key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE k IN (SELECT k FROM u)", expect: { tables: ["t", "u"], select: { hasSubquery: true } }, key: { table: "t", columns: ["k"], predicate: ALL } },
  {
    sql: "SELECT * FROM t WHERE k BETWEEN 10 AND 20",
    key: { table: "t", columns: ["k"], predicate: { kind: "ranges", ranges: [{ lower: { value: 10, inclusive: true }, upper: { value: 20, inclusive: true } }] } },
  },
  { sql: "SELECT * FROM t WHERE k BETWEEN 20 AND 10", key: { table: "t", columns: ["k"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k BETWEEN 3 AND 3", key: { table: "t", columns: ["k"], predicate: pts(3) } },
  { sql: "SELECT * FROM t WHERE k NOT BETWEEN 1 AND 3", key: { table: "t", columns: ["k"], predicate: ALL } },
  {
    sql: "SELECT * FROM t WHERE k > 5 AND k <= ?",
    key: { table: "t", columns: ["k"], params: [9], predicate: { kind: "ranges", ranges: [{ lower: { value: 5, inclusive: false }, upper: { value: 9, inclusive: true } }] } },
  },
  { sql: "SELECT * FROM t WHERE k > 5 AND k < 5", key: { table: "t", columns: ["k"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k >= 5 AND k <= 5", key: { table: "t", columns: ["k"], predicate: pts(5) } },
  { sql: "SELECT * FROM t WHERE k < 3", key: { table: "t", columns: ["k"], predicate: { kind: "ranges", ranges: [{ upper: { value: 3, inclusive: false } }] } } },
  {
    sql: "SELECT * FROM t WHERE k = 1 OR k > 10",
    key: {
      table: "t",
      columns: ["k"],
      predicate: { kind: "ranges", ranges: [{ lower: { value: 1, inclusive: true }, upper: { value: 1, inclusive: true } }, { lower: { value: 10, inclusive: false } }] },
    },
  },
  { sql: "SELECT * FROM t WHERE k > 1 OR k < 3", key: { table: "t", columns: ["k"], predicate: { kind: "ranges", ranges: [{ lower: { value: 1, inclusive: false } }, { upper: { value: 3, inclusive: false } }] } } },
  { sql: "SELECT * FROM t WHERE k > 3 AND k = 7", key: { table: "t", columns: ["k"], predicate: pts(7) } },
  { sql: "SELECT * FROM t WHERE k > 3 AND k = 2", key: { table: "t", columns: ["k"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k = 1 AND k = '1'", key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: "SELECT * FROM t", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE a = 1 AND b = 2", key: { table: "t", columns: ["a", "b"], predicate: { kind: "points", values: [[1, 2]] } } },
  {
    sql: "SELECT * FROM t WHERE a IN (1, 2) AND b = ?",
    key: { table: "t", columns: ["a", "b"], params: ["x"], predicate: { kind: "points", values: [[1, "x"], [2, "x"]] } },
  },
  { sql: "SELECT * FROM t WHERE a = 1", key: { table: "t", columns: ["a", "b"], predicate: ALL } },
  { sql: "SELECT * FROM t WHERE a = 1 AND b > 2", key: { table: "t", columns: ["a", "b"], predicate: ALL } },
  {
    sql: "SELECT * FROM t WHERE (a = 1 AND b = 2) OR (a = 3 AND b = 4)",
    key: { table: "t", columns: ["a", "b"], predicate: { kind: "points", values: [[1, 2], [3, 4]] } },
  },
  { sql: "SELECT * FROM t WHERE a = 1 AND b = 2 AND a = 3", key: { table: "t", columns: ["a", "b"], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE t.k = 4", key: { table: "t", columns: ["k"], predicate: pts(4) } },
  { sql: "SELECT * FROM t AS x WHERE x.k = 4", key: { table: "t", columns: ["k"], predicate: pts(4) } },
  { sql: "SELECT * FROM t WHERE k = ?", key: { table: "u", columns: ["k"], params: [1], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k = ?", key: { table: "t", columns: ["k"], params: [null], predicate: NONE } },
  { sql: "SELECT * FROM t WHERE k IS NOT NULL AND k = 3", key: { table: "t", columns: ["k"], predicate: pts(3) } },
  { sql: "SELECT * FROM t WHERE k == 3", dialects: sqliteOnly, key: { table: "t", columns: ["k"], predicate: pts(3) } },
  { sql: "SELECT * FROM t WHERE k = TRUE", dialects: sqliteOnly, key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: "SELECT * FROM t WHERE k = TRUE", dialects: postgresOnly, key: { table: "t", columns: ["k"], predicate: pts(true) } },
  { sql: "SELECT * FROM t WHERE k = 9007199254740993", key: { table: "t", columns: ["k"], predicate: pts(9007199254740993n) } },
  { sql: "SELECT * FROM t WHERE k = -0.5e1", key: { table: "t", columns: ["k"], predicate: pts(-5) } },
  { sql: "SELECT * FROM `t` WHERE `k` = 1", dialects: sqliteOnly, expect: { tables: ["t"] }, key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: 'SELECT * FROM "T" WHERE "K" = 1', expect: { tables: ["T"] }, reads: ["T.*", "T.K"], key: { table: "T", columns: ["K"], predicate: pts(1) } },
  { sql: "SELECT * FROM T WHERE K = 1", expect: { tables: ["t"] }, reads: ["t.*", "t.k"] },

  // ----- joins
  {
    sql: "SELECT t.a, u.b FROM t JOIN u ON t.id = u.tid WHERE t.k = 1",
    expect: { tables: ["t", "u"], joins: [{ type: "inner", left: "t", right: "u", using: false, on: [[{ table: "t", column: "id" }, { table: "u", column: "tid" }]] }] },
    reads: ["t.a", "t.id", "t.k", "u.b", "u.tid"],
    key: { table: "t", columns: ["k"], predicate: pts(1) },
  },
  {
    sql: "SELECT * FROM t INNER JOIN u ON t.k = u.k AND u.k = 3",
    key: { table: "t", columns: ["k"], predicate: ALL },
  },
  { sql: "SELECT * FROM t INNER JOIN u ON t.k = u.k AND u.k = 3", key: { table: "u", columns: ["k"], predicate: pts(3) } },
  { sql: "SELECT * FROM t LEFT JOIN u ON t.id = u.id AND t.k = 3", key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "SELECT * FROM t LEFT JOIN u ON t.id = u.id AND u.k = 3", key: { table: "u", columns: ["k"], predicate: pts(3) } },
  { sql: "SELECT * FROM t LEFT JOIN u ON t.id = u.id WHERE u.k = 3", key: { table: "u", columns: ["k"], predicate: pts(3) } },
  {
    sql: "SELECT * FROM t LEFT JOIN u USING (id)",
    expect: { joins: [{ type: "left", left: "t", right: "u", using: true, on: [[{ table: "t", column: "id" }, { table: "u", column: "id" }]] }] },
    reads: ["t.*", "t.id", "u.*", "u.id"],
  },
  { sql: "SELECT * FROM t JOIN u USING (k) WHERE k = 2", key: { table: "u", columns: ["k"], predicate: pts(2) } },
  {
    sql: "SELECT * FROM t a JOIN t b ON a.k = b.k WHERE a.k = 1",
    expect: { tables: ["t"], joins: [{ left: "t", right: "t", on: [[{ table: "t", column: "k" }, { table: "t", column: "k" }]] }] },
    key: { table: "t", columns: ["k"], predicate: ALL },
  },
  {
    sql: "SELECT * FROM t a JOIN t b ON a.id = b.id WHERE a.k = 1 AND b.k = 2",
    key: { table: "t", columns: ["k"], predicate: pts(1, 2) },
  },
  {
    sql: "SELECT * FROM t, u WHERE t.id = u.tid AND t.k = ?",
    expect: { joins: [{ type: "cross", left: "t", right: "u", on: [[{ table: "t", column: "id" }, { table: "u", column: "tid" }]] }] },
    key: { table: "t", columns: ["k"], params: [8], predicate: pts(8) },
  },
  {
    sql: "SELECT * FROM t JOIN u ON t.k = u.k JOIN v ON u.k = v.k",
    expect: { joins: [{ left: "t", right: "u" }, { left: "u", right: "v", on: [[{ table: "u", column: "k" }, { table: "v", column: "k" }]] }] },
  },
  { sql: "SELECT * FROM (SELECT * FROM t WHERE k = 1) AS s", expect: { select: { hasSubquery: true, from: [] } }, key: { table: "t", columns: ["k"], predicate: pts(1) } },
  { sql: "WITH s AS (SELECT * FROM t WHERE k = 2) SELECT * FROM s", expect: { tables: ["t"], select: { hasSubquery: true } }, key: { table: "t", columns: ["k"], predicate: pts(2) } },
  { sql: "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)", expect: { tables: ["t", "u"] }, reads: ["t.*", "t.id", "u.tid"] },

  // ----- occurrences for co-location: which occurrence each join column belongs to, nesting
  {
    sql: "SELECT * FROM t a JOIN t b ON a.k = b.k WHERE a.k = 1",
    expect: {
      occurrences: [{ table: "t", alias: "a", nested: false }, { table: "t", alias: "b", nested: false }],
      joins: [{ leftOccurrences: [0], rightOccurrences: [1], on: [[{ table: "t", column: "k", occurrence: 0 }, { table: "t", column: "k", occurrence: 1 }]] }],
    },
  },
  {
    sql: "SELECT * FROM t JOIN u USING (k) LEFT JOIN v ON v.k = u.k",
    expect: {
      joins: [
        { type: "inner", leftOccurrences: [0], rightOccurrences: [1], on: [[{ table: "t", occurrence: 0 }, { table: "u", occurrence: 1 }]] },
        { type: "left", leftOccurrences: [0, 1], rightOccurrences: [2], on: [[{ table: "u", column: "k", occurrence: 1 }, { table: "v", column: "k", occurrence: 2 }]] },
      ],
    },
  },
  {
    sql: "SELECT * FROM t, u WHERE u.k = t.k",
    expect: { joins: [{ type: "cross", leftOccurrences: [0], rightOccurrences: [1], on: [[{ table: "t", occurrence: 0 }, { table: "u", occurrence: 1 }]] }] },
  },
  {
    sql: "SELECT * FROM t WHERE x IN (SELECT x FROM u) AND EXISTS (SELECT 1 FROM (SELECT * FROM v) s)",
    expect: { occurrences: [{ table: "t", nested: false }, { table: "u", nested: true }, { table: "v", nested: true }] },
  },
  {
    sql: "WITH c AS (SELECT * FROM u) SELECT * FROM t JOIN c ON c.k = t.k",
    expect: { occurrences: [{ table: "u", nested: true }, { table: "t", nested: false }] },
  },
  { sql: "SELECT k FROM t UNION ALL SELECT k FROM u", expect: { occurrences: [{ table: "t", nested: true }, { table: "u", nested: true }] } },
  { sql: "UPDATE t SET x = (SELECT max(x) FROM u) WHERE k = 1", expect: { occurrences: [{ table: "t", nested: false, target: true }, { table: "u", nested: true }] } },
  {
    sql: 'CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT COLLATE "nocase" NOT NULL, code TEXT COLLATE "C")',
    expect: { ddl: { columns: [{ name: "id" }, { name: "name", collation: "nocase", notNull: true }, { name: "code", collation: "c" }] } },
  },
  // ----- HAVING as a condition a merger can evaluate
  {
    sql: "SELECT k, COUNT(*) AS n FROM t GROUP BY k HAVING COUNT(*) > 1 AND NOT avg(x) BETWEEN 1 AND ? OR min(y) IS NOT NULL",
    expect: {
      select: {
        having: true,
        havingCondition: {
          kind: "or",
          parts: [
            {
              kind: "and",
              parts: [
                { kind: "compare", op: ">", left: { kind: "aggregate", aggregate: "count", text: "count(*)", offset: 49 }, right: { kind: "value", value: 1 } },
                { kind: "not", part: { kind: "between", negated: false, operand: { kind: "aggregate", aggregate: "avg", offset: 70 }, low: { kind: "value", value: 1 }, high: { kind: "param", index: 0 } } },
              ],
            },
            { kind: "is_null", negated: true, operand: { kind: "aggregate", aggregate: "min" } },
          ],
        },
      },
    },
  },
  { sql: "SELECT k, COUNT(*) AS n FROM t GROUP BY k HAVING n <> 2", dialects: sqliteOnly, expect: { select: { havingCondition: { kind: "compare", op: "<>", left: { kind: "output", index: 1, name: "n" } } } } },
  { sql: "SELECT k, COUNT(*) AS n FROM t GROUP BY k HAVING n <> 2", dialects: postgresOnly, expect: { select: { havingCondition: { kind: "opaque" } } } },
  { sql: "SELECT k FROM t GROUP BY k HAVING k > 1", expect: { select: { havingCondition: { kind: "opaque", text: "(k > 1)" } } } },
  { sql: "SELECT k FROM t GROUP BY k HAVING sum(x) + 1 > 1", expect: { select: { havingCondition: { kind: "opaque" } } } },

  // ----- SELECT shape
  {
    sql: "SELECT a, COUNT(*) AS n, SUM(x), MIN(x), MAX(x), AVG(x), COUNT(x), COUNT(DISTINCT x), AVG(DISTINCT x), max(a, b) FROM t GROUP BY a",
    dialects: sqliteOnly,
    expect: {
      select: {
        columns: [
          { name: "a", expression: "a", isStar: false },
          { name: "n", expression: "count(*)", aggregate: "count" },
          { name: "sum", expression: "sum(x)", aggregate: "sum" },
          { name: "min", aggregate: "min" },
          { name: "max", aggregate: "max" },
          { name: "avg", aggregate: "avg" },
          { name: "count", expression: "count(x)", aggregate: "count" },
          { expression: "count(DISTINCT x)", aggregate: "count_distinct" },
          { aggregate: "other" },
          { name: "max", expression: "max(a, b)" },
        ],
        groupBy: ["a"],
        groupByOutputIndex: [0],
        hasAggregate: true,
      },
    },
  },
  {
    sql: "SELECT dept, COUNT(*) AS n FROM emp WHERE age > 30 GROUP BY dept HAVING COUNT(*) > 1 ORDER BY n DESC, dept ASC NULLS LAST LIMIT 10 OFFSET 20",
    expect: {
      select: {
        having: true,
        groupBy: ["dept"],
        orderBy: [
          { expression: "count(*)", descending: true, outputIndex: 1 },
          { expression: "dept", descending: false, nullsFirst: false, outputIndex: 0 },
        ],
        limit: { kind: "value", value: 10 },
        offset: { kind: "value", value: 20 },
        from: ["emp"],
      },
    },
  },
  {
    sql: "SELECT a, b FROM t ORDER BY 2 DESC NULLS FIRST, c, a + 1 LIMIT ? OFFSET ?",
    expect: {
      parameterCount: 2,
      select: {
        orderBy: [
          { expression: "b", descending: true, nullsFirst: true, outputIndex: 1 },
          { expression: "c", descending: false, outputIndex: null },
          { expression: "(a + 1)", outputIndex: null },
        ],
        limit: { kind: "param", index: 0 },
        offset: { kind: "param", index: 1 },
      },
    },
    reads: ["t.a", "t.b", "t.c"],
  },
  {
    sql: "SELECT a AS x, b FROM t GROUP BY 1, b ORDER BY x",
    expect: { select: { groupBy: ["a", "b"], groupByOutputIndex: [0, 1], orderBy: [{ expression: "a", outputIndex: 0 }] } },
    reads: ["t.a", "t.b"],
  },
  { sql: "SELECT DISTINCT a FROM t", expect: { select: { distinct: true, hasAggregate: false } } },
  { sql: "SELECT a FROM t UNION SELECT a FROM u", expect: { tables: ["t", "u"], select: { hasUnion: true, columns: [{ name: "a" }] } } },
  { sql: "SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY 1 LIMIT 3", expect: { select: { hasUnion: true, limit: { kind: "value", value: 3 } } } },
  { sql: "SELECT a, row_number() OVER (ORDER BY a) FROM t", expect: { select: { hasWindow: true } } },
  { sql: "SELECT COUNT(*) + 1 FROM t", expect: { select: { columns: [{ aggregate: "other" }], hasAggregate: true } } },
  { sql: "SELECT t.*, u.a FROM t JOIN u ON t.id = u.id", expect: { select: { columns: [{ isStar: true, expression: "t.*" }, { isStar: false }] } }, reads: ["t.*", "t.id", "u.a", "u.id"] },
  { sql: "SELECT 1", expect: { kind: "select", tables: [], select: { from: [] } } },
  { sql: "SELECT random() FROM t", expect: { isWrite: false, nondeterministic: ["random"] } },
  { sql: "SELECT CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME", expect: { nondeterministic: ["current_timestamp", "current_date", "current_time"] } },
  { sql: "SELECT date('now'), strftime('%s', 'now'), julianday('2020-01-01')", dialects: sqliteOnly, expect: { nondeterministic: ["date('now')", "strftime('now')"] } },

  // ----- UPDATE / DELETE
  {
    sql: "UPDATE t SET v = v || 'x', n = ? WHERE k = ?",
    expect: { kind: "update", isWrite: true, update: { table: "t", setColumns: ["v", "n"] }, parameterCount: 2 },
    reads: ["t.k", "t.v"],
    writes: ["t.n", "t.v"],
    key: { table: "t", columns: ["k"], params: ["z", 4], predicate: pts(4) },
  },
  { sql: "UPDATE t SET k = 5 WHERE id = 1", expect: { update: { setColumns: ["k"] } }, key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "UPDATE t SET v = (SELECT max(v) FROM u WHERE u.k = t.k) WHERE k IN (1, 2)", expect: { tables: ["t", "u"] }, reads: ["t.k", "u.k", "u.v"], key: { table: "t", columns: ["k"], predicate: pts(1, 2) } },
  { sql: "UPDATE t SET at = CURRENT_TIMESTAMP WHERE k = 1", expect: { nondeterministic: ["current_timestamp"] } },
  { sql: "UPDATE t SET v = 1 RETURNING v", expect: { update: { returning: true } } },
  {
    sql: "DELETE FROM t WHERE k = ? OR k = ?",
    expect: { kind: "delete", isWrite: true, delete: { table: "t" } },
    reads: ["t.k"],
    writes: ["t.*"],
    key: { table: "t", columns: ["k"], params: [1, 2], predicate: pts(1, 2) },
  },
  { sql: "DELETE FROM t", writes: ["t.*"], key: { table: "t", columns: ["k"], predicate: ALL } },
  { sql: "DELETE FROM t WHERE k > ?", key: { table: "t", columns: ["k"], params: [3], predicate: { kind: "ranges", ranges: [{ lower: { value: 3, inclusive: false } }] } } },

  // ----- transaction control and other
  { sql: "BEGIN", expect: { kind: "other", isWrite: false, transaction: "begin", tables: [] } },
  { sql: "BEGIN TRANSACTION", expect: { kind: "other", transaction: "begin" } },
  { sql: "BEGIN IMMEDIATE", dialects: sqliteOnly, expect: { kind: "other", transaction: "begin" } },
  { sql: "COMMIT", expect: { kind: "other", transaction: "commit" } },
  { sql: "END", expect: { kind: "other", transaction: "commit" } },
  { sql: "ROLLBACK", expect: { kind: "other", transaction: "rollback" } },
  { sql: "SAVEPOINT s1", expect: { kind: "other", transaction: "savepoint" } },
  { sql: "ROLLBACK TO SAVEPOINT s1", expect: { kind: "other", transaction: "rollback_to" } },
  { sql: "PRAGMA foreign_keys = ON", dialects: sqliteOnly, expect: { kind: "other", isWrite: false } },
  { sql: "COMMIT;", expect: { kind: "other" } },
  { sql: "SELECT 1;;  -- trailing comment", expect: { kind: "select" } },

  // ----- errors
  { sql: "SELECT 1; SELECT 2", error: { code: "MULTIPLE_STATEMENTS", message: /second statement starts at line 1, column 11/ } },
  { sql: "BEGIN; INSERT INTO t VALUES (1)", error: { code: "MULTIPLE_STATEMENTS", message: /line 1, column 8/ } },
  { sql: "SELECT * FROM t WHERE a = ';' ", expect: { kind: "select" } },
  { sql: "SELEC x FROM t", error: { code: "PARSE_ERROR", message: /^syntax error at or near "SELEC" \(line 1, column 1\)$/ } },
  { sql: "SELECT * FROM t WHERE a = = 1", error: { code: "PARSE_ERROR", message: /syntax error at or near "=" \(line 1, column 27\)/ } },
  { sql: "SELECT *\nFROM t\nWHERE k = ? AND AND", error: { code: "PARSE_ERROR", message: /syntax error at or near "AND" \(line 3, column 17\)/ } },
  { sql: "SELECT 'abc FROM t", error: { code: "PARSE_ERROR", message: /unterminated quoted string.*\(line 1, column 8\)/ } },
  { sql: "", error: { code: "PARSE_ERROR", message: /empty statement/ } },
  { sql: "  -- only a comment", error: { code: "PARSE_ERROR", message: /empty statement/ } },
  { sql: "SELECT * FROM t WHERE k = $1", error: { code: "UNSUPPORTED", message: /parameter "\$1" is not supported: use \? placeholders/ } },
  { sql: "SELECT * FROM t WHERE k = :k", dialects: sqliteOnly, error: { code: "UNSUPPORTED", message: /named parameter ":k"/ } },
  { sql: "SELECT * FROM t WHERE k = ?1", error: { code: "UNSUPPORTED", message: /numbered parameter "\?1"/ } },
  { sql: "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", dialects: postgresOnly, error: { code: "UNSUPPORTED", message: /data-modifying WITH/ } },
  { sql: "SELECT a FROM t ORDER BY 3", error: { code: "PARSE_ERROR", message: /position 3 is not in the select list/ } },

  // ----- parameters outside strings, comments, identifiers
  { sql: "SELECT '?', \"?\" FROM t WHERE a = ? /* ? */ -- ?\n AND b = ?", expect: { parameterCount: 2 } },
  { sql: "SELECT $$ ? $$ FROM t WHERE a = ?", dialects: postgresOnly, expect: { parameterCount: 1 } },
  { sql: "SELECT E'\\' ?' FROM t WHERE a = ?", dialects: postgresOnly, expect: { parameterCount: 1 } },
  { sql: "SELECT [a?] FROM t WHERE a = ?", dialects: sqliteOnly, expect: { parameterCount: 1 }, reads: ["t.a", "t.a?"] },
  { sql: "SELECT '😀😀', x FROM t WHERE WHERE", error: { code: "PARSE_ERROR", message: /syntax error at or near "WHERE" \(line 1, column 31\)/ } },
  { sql: "SELECT 'é', ? FROM t WHERE WHERE", error: { code: "PARSE_ERROR", message: /syntax error at or near "WHERE" \(line 1, column 28\)/ } },
  {
    sql: 'CREATE TABLE "ü" ("名前" TEXT, a VARCHAR(3) NOT NULL)',
    expect: { tables: ["ü"], ddl: { columns: [{ name: "名前", type: "TEXT" }, { name: "a", type: "VARCHAR(3)", notNull: true }] } },
  },
  { sql: "SELECT * FROM t WHERE a = 'é' AND b = ? AND c = ?", key: { table: "t", columns: ["c"], params: [1, 2], predicate: pts(2) } },
];

function refs(list: Array<{ table: string; column: string }>): string[] {
  return list.map((r) => `${r.table}.${r.column}`).sort();
}

beforeAll(() => loadSqlParser());

describe.each(both)("analyze (%s)", (dialect) => {
  const mine = cases.filter((c) => (c.dialects ?? both).includes(dialect));
  test.each(mine.map((c) => [c.sql, c] as const))("%s", (_sql, c) => {
    if (c.error) {
      let caught: unknown;
      try {
        analyze(c.sql, { dialect });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(SqlError);
      expect((caught as SqlError).code).toBe(c.error.code);
      expect((caught as SqlError).message).toMatch(c.error.message);
      return;
    }
    const analysis: Analysis = analyze(c.sql, { dialect });
    expect(analysis.dialect).toBe(dialect);
    if (c.expect) expect(analysis).toMatchObject(c.expect);
    if (c.reads) expect(refs(analysis.readSet)).toEqual([...c.reads].sort());
    if (c.writes) expect(refs(analysis.writeSet)).toEqual([...c.writes].sort());
    if (c.key) {
      expect(shardKeyPredicate(analysis, c.key.table, c.key.columns, c.key.params ?? [])).toEqual(c.key.predicate);
    }
  });
});

test("the table has at least 80 cases per dialect", () => {
  for (const dialect of both) expect(cases.filter((c) => (c.dialects ?? both).includes(dialect)).length).toBeGreaterThanOrEqual(80);
});

describe("parameters", () => {
  test("a parameter count mismatch is PARAMETER_MISMATCH", () => {
    expect(() => analyze("SELECT * FROM t WHERE a = ? AND b = ?", { dialect: "sqlite", params: [1] })).toThrow(
      expect.objectContaining({ code: "PARAMETER_MISMATCH", message: "statement has 2 ? placeholder(s) but 1 parameter(s) were given" }),
    );
  });
  test("a predicate over a missing parameter is PARAMETER_MISMATCH", () => {
    const analysis = analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite" });
    expect(() => shardKeyPredicate(analysis, "t", ["k"], [])).toThrow(expect.objectContaining({ code: "PARAMETER_MISMATCH" }));
  });
  test("parse errors carry a position", () => {
    try {
      analyze("SELECT *\nFROM t WHERE WHERE", { dialect: "postgres" });
      throw new Error("no error");
    } catch (error) {
      expect(error).toBeInstanceOf(SqlError);
      expect((error as SqlError).position).toEqual({ line: 2, column: 14, offset: 22 });
    }
  });
  test("the analysis is frozen and does not depend on parameter values", () => {
    const a = analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite", params: [1] });
    const b = analyze("SELECT * FROM t WHERE k = ?", { dialect: "sqlite", params: [2] });
    expect(a).toEqual(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.occurrences[0]!.restriction)).toBe(true);
  });
});

describe("assertDeterministic", () => {
  test("rejects a write with a nondeterministic function, naming it", () => {
    const analysis = analyze("INSERT INTO t (k, at) VALUES (1, datetime('now'))", { dialect: "sqlite" });
    expect(() => assertDeterministic(analysis)).toThrow(
      expect.objectContaining({
        code: "NONDETERMINISTIC",
        message: expect.stringMatching(/^nondeterministic function datetime\('now'\) cannot be used in a replicated write/),
      }),
    );
  });
  test("accepts reads and deterministic writes", () => {
    expect(() => assertDeterministic(analyze("SELECT random()", { dialect: "sqlite" }))).not.toThrow();
    expect(() => assertDeterministic(analyze("UPDATE t SET v = abs(-1) WHERE k = 1", { dialect: "postgres" }))).not.toThrow();
  });
});

test("analyze before loading the parser explains what to do", () => {
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fresh = require("../src/index") as typeof import("../src/index");
    expect(() => fresh.analyze("SELECT 1", { dialect: "sqlite" })).toThrow(/call `await loadSqlParser\(\)` once at start/);
  });
});
