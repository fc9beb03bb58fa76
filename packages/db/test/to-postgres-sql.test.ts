import { parsePreparedTransactionId, postgresSchemaName, preparedTransactionId, toPostgresSql } from "@mycelium/db";

describe("toPostgresSql", () => {
  const cases: Array<[string, string, string]> = [
    ["plain parameters", "SELECT * FROM t WHERE a = ? AND b > ?", "SELECT * FROM t WHERE a = $1 AND b > $2"],
    ["no parameters", "SELECT 1", "SELECT 1"],
    ["? in a string literal", "SELECT '?' , ?", "SELECT '?' , $1"],
    ["doubled quote inside a literal", "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    ["E'' string with backslash-escaped quote", "SELECT E'a\\'?', ?", "SELECT E'a\\'?', $1"],
    ["plain string keeps backslash literal", "SELECT 'a\\', ?", "SELECT 'a\\', $1"],
    ["quoted identifier", 'SELECT "wh?t" FROM t WHERE x = ?', 'SELECT "wh?t" FROM t WHERE x = $1'],
    ["line comment", "SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"],
    ["line comment at the end", "SELECT ? -- ?", "SELECT $1 -- ?"],
    ["nested block comment", "SELECT /* a /* ? */ ? */ ?", "SELECT /* a /* ? */ ? */ $1"],
    ["dollar quoting", "SELECT $$?$$, $tag$ ? $$ ? $tag$, ?", "SELECT $$?$$, $tag$ ? $$ ? $tag$, $1"],
    ["an existing $1 is not a dollar quote", "SELECT $1, ?", "SELECT $1, $1"],
    ["identifier ending in E before a quote is not an escape string", "SELECT name'x', ?", "SELECT name'x', $1"],
    ["ten and more", "VALUES (?,?,?,?,?,?,?,?,?,?,?)", "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"],
    ["unterminated literal is left as is", "SELECT '?", "SELECT '?"],
  ];
  test.each(cases)("%s", (_name, input, expected) => {
    expect(toPostgresSql(input)).toBe(expected);
  });
});

describe("identifiers", () => {
  test("schema names are myc_<id> when the id is already a plain lower-case name", () => {
    expect(postgresSchemaName("orders_3")).toBe("myc_orders_3");
  });

  test("ids that sanitise to the same name get different schemas", () => {
    const names = ["Orders-3", "orders-3", "orders.3", "orders_3"].map(postgresSchemaName);
    expect(new Set(names).size).toBe(4);
    for (const name of names) expect(name).toMatch(/^myc_[a-z0-9_]+$/);
  });

  test("long ids stay within PostgreSQL's 63-byte identifier limit", () => {
    const name = postgresSchemaName("x".repeat(128));
    expect(name.length).toBeLessThanOrEqual(63);
  });

  test("prepared transaction ids round-trip", () => {
    const gid = preparedTransactionId("0b6c-77:1", "users_shard.2");
    expect(gid).toBe("myc_0b6c-77:1_users_shard.2");
    expect(parsePreparedTransactionId(gid)).toEqual({ txId: "0b6c-77:1", shardId: "users_shard.2" });
    expect(parsePreparedTransactionId("other_gid")).toBeNull();
  });
});
