import Database from "better-sqlite3";
import fc from "fast-check";
import {
  analyze,
  loadSqlParser,
  shardKeyPredicate,
  splitInsert,
  type Dialect,
  type KeyPredicate,
  type SqlValue,
} from "@mycelium/sql";

// fast-check prints the seed and the shrunk counterexample on failure; rerun with { seed, path } to replay.
const RUNS = { numRuns: 300 };

beforeAll(() => loadSqlParser());

// ---------------------------------------------------------------------------------------------------------
// (1) Fingerprint invariance: replacing literals with other literals never changes the fingerprint.

const literal = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((d) => (Number.isInteger(d) ? `${d}.5` : String(d))),
  fc.string({ maxLength: 12 }).map((s) => `'${s.replace(/\u0000/g, "").split("'").join("''")}'`),
  fc.uint8Array({ maxLength: 6 }).map((b) => `X'${Buffer.from(b).toString("hex")}'`),
  fc.constant("?"),
);

/** Statement templates; each `#` is a literal slot. */
const templates = [
  "SELECT * FROM t WHERE k = #",
  "SELECT a, b FROM t WHERE k IN (#, #, #) AND v > # ORDER BY a LIMIT #",
  "SELECT count(*) FROM t WHERE k BETWEEN # AND # OR v = #",
  "INSERT INTO t (k, v, w) VALUES (#, #, #), (#, #, #)",
  "UPDATE t SET v = #, w = w + # WHERE k = # AND v <> #",
  "DELETE FROM t WHERE k = # OR k < #",
  "SELECT a FROM t JOIN u ON t.id = u.id WHERE t.k = # AND u.x = # LIMIT # OFFSET #",
  "SELECT CASE WHEN v = # THEN # ELSE # END AS c FROM t WHERE -k = #",
  "INSERT INTO t (k, v) VALUES (#, #) ON CONFLICT (k) DO UPDATE SET v = #",
  "SELECT a - # FROM t WHERE a - # > #",
];

function fill(template: string, values: string[]): string {
  let i = 0;
  return template.replace(/#/g, () => values[i++]!);
}

describe("fingerprint", () => {
  test.each(["sqlite", "postgres"] as Dialect[])("is invariant under literal replacement (%s)", (dialect) => {
    fc.assert(
      fc.property(
        fc.constantFrom(...templates),
        fc.array(literal, { minLength: 12, maxLength: 12 }),
        fc.array(literal, { minLength: 12, maxLength: 12 }),
        (template, first, second) => {
          const a = analyze(fill(template, first), { dialect });
          const b = analyze(fill(template, second), { dialect });
          expect(a.fingerprint).toBe(b.fingerprint);
        },
      ),
      RUNS,
    );
  });

  test("differs when the shape differs and ignores case, spacing and comments", () => {
    const f = (sql: string) => analyze(sql, { dialect: "sqlite" }).fingerprint;
    expect(f("SELECT * FROM t WHERE k = 1")).not.toBe(f("SELECT * FROM t WHERE v = 1"));
    expect(f("SELECT * FROM t WHERE k = 1")).not.toBe(f("SELECT * FROM t WHERE k > 1"));
    expect(f("SELECT * FROM t WHERE k IN (1, 2)")).not.toBe(f("SELECT * FROM t WHERE k IN (1, 2, 3)"));
    expect(f("select *  from T where K = 1 -- x")).toBe(f("SELECT * FROM t /* y */ WHERE k = 'z'"));
    expect(f('SELECT * FROM "T"')).not.toBe(f("SELECT * FROM T"));
  });
});

// ---------------------------------------------------------------------------------------------------------
// (2) Predicate soundness against SQLite itself.

interface Where {
  sql: string;
  params: SqlValue[];
  /** Only = / IN on k, combined with AND / OR: the predicate must then be exact. */
  pure: boolean;
}

const smallValue = fc.integer({ min: -6, max: 6 });

function operand(): fc.Arbitrary<{ sql: string; params: SqlValue[] }> {
  return fc.oneof(
    { weight: 5, arbitrary: smallValue.map((v) => ({ sql: String(v), params: [] as SqlValue[] })) },
    { weight: 3, arbitrary: smallValue.map((v) => ({ sql: "?", params: [v] as SqlValue[] })) },
    { weight: 1, arbitrary: fc.constant({ sql: "NULL", params: [] as SqlValue[] }) },
    { weight: 1, arbitrary: fc.constant({ sql: "?", params: [null] as SqlValue[] }) },
  );
}

function list(): fc.Arbitrary<{ sql: string; params: SqlValue[] }> {
  return fc.array(operand(), { minLength: 1, maxLength: 4 }).map((items) => ({
    sql: items.map((i) => i.sql).join(", "),
    params: items.flatMap((i) => i.params),
  }));
}

const pureAtom: fc.Arbitrary<Where> = fc.oneof(
  fc.tuple(fc.constantFrom("k = ", "t.k = "), operand()).map(([lhs, o]) => ({ sql: `${lhs}${o.sql}`, params: o.params, pure: true })),
  operand().map((o) => ({ sql: `${o.sql} = k`, params: o.params, pure: true })),
  list().map((l) => ({ sql: `k IN (${l.sql})`, params: l.params, pure: true })),
);

const impureAtom: fc.Arbitrary<Where> = fc.oneof(
  fc.tuple(fc.constantFrom("<", "<=", ">", ">=", "<>", "!="), operand()).map(([op, o]) => ({ sql: `k ${op} ${o.sql}`, params: o.params, pure: false })),
  fc.tuple(fc.constantFrom("<", "<=", ">", ">="), operand()).map(([op, o]) => ({ sql: `${o.sql} ${op} k`, params: o.params, pure: false })),
  fc.tuple(operand(), operand(), fc.boolean()).map(([a, b, not]) => ({ sql: `k ${not ? "NOT " : ""}BETWEEN ${a.sql} AND ${b.sql}`, params: [...a.params, ...b.params], pure: false })),
  list().map((l) => ({ sql: `k NOT IN (${l.sql})`, params: l.params, pure: false })),
  fc.constantFrom("k IS NULL", "k IS NOT NULL", "k = x", "x = k", "k < x", "k + 0 = 1", "abs(k) = 2", "k LIKE '1%'", "k IN (SELECT x FROM t)").map((sql) => ({ sql, params: [], pure: false })),
  fc.tuple(fc.constantFrom("x = ", "x > ", "x IN ("), operand()).map(([lhs, o]) => ({ sql: lhs.endsWith("(") ? `${lhs}${o.sql})` : `${lhs}${o.sql}`, params: o.params, pure: false })),
);

const whereClause: fc.Arbitrary<Where> = fc.letrec<{ where: Where }>((tie) => ({
  where: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 3, arbitrary: pureAtom },
    { weight: 3, arbitrary: impureAtom },
    {
      weight: 2,
      arbitrary: fc.tuple(tie("where"), fc.constantFrom("AND", "OR"), tie("where")).map(([a, op, b]) => ({
        sql: `(${a.sql} ${op} ${b.sql})`,
        params: [...a.params, ...b.params],
        pure: a.pure && b.pure,
      })),
    },
    { weight: 1, arbitrary: tie("where").map((a) => ({ sql: `NOT (${a.sql})`, params: a.params, pure: false })) },
  ),
})).where;

const rows = fc.array(
  fc.record({ k: fc.option(fc.integer({ min: -7, max: 7 }), { freq: 6 }), x: fc.option(fc.integer({ min: -7, max: 7 }), { freq: 6 }) }),
  { maxLength: 25 },
);

function contains(predicate: KeyPredicate, key: SqlValue[]): boolean {
  switch (predicate.kind) {
    case "all":
      return true;
    case "none":
      return false;
    case "points":
      return predicate.values.some((p) => p.length === key.length && p.every((v, i) => v === key[i]));
    case "ranges": {
      const k = key[0] as number;
      return predicate.ranges.some(
        (r) =>
          (!r.lower || (r.lower.inclusive ? k >= (r.lower.value as number) : k > (r.lower.value as number))) &&
          (!r.upper || (r.upper.inclusive ? k <= (r.upper.value as number) : k < (r.upper.value as number))),
      );
    }
  }
}

describe("shard-key predicate", () => {
  let db: Database.Database;
  beforeAll(() => {
    db = new Database(":memory:");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, x INTEGER)");
    db.exec("CREATE TABLE probe (k INTEGER, x INTEGER)");
    const insert = db.prepare("INSERT INTO probe (k, x) VALUES (?, ?)");
    for (let k = -8; k <= 8; k++) insert.run(k, 0);
  });
  afterAll(() => db.close());

  test("never excludes a matching row, and is exact for = / IN", () => {
    fc.assert(
      fc.property(rows, whereClause, (data, where) => {
        db.exec("DELETE FROM t");
        const insert = db.prepare("INSERT INTO t (k, x) VALUES (?, ?)");
        for (const row of data) insert.run(row.k, row.x);
        const sql = `SELECT k FROM t WHERE ${where.sql}`;
        for (const dialect of ["sqlite", "postgres"] as Dialect[]) {
          const predicate = shardKeyPredicate(analyze(sql, { dialect, params: where.params }), "t", ["k"], where.params);
          const matching = db.prepare(sql).all(...where.params) as Array<{ k: number | null }>;
          for (const row of matching) expect(contains(predicate, [row.k])).toBe(true);
          if (where.pure) {
            expect(["points", "none"]).toContain(predicate.kind);
            const exact = (db.prepare(`SELECT k FROM probe WHERE ${where.sql.replace(/t\.k/g, "probe.k")}`).all(...where.params) as Array<{ k: number }>)
              .map((r) => r.k)
              .sort((a, b) => a - b);
            const points = predicate.kind === "points" ? predicate.values.map((v) => v[0] as number).sort((a, b) => a - b) : [];
            expect(points).toEqual(exact);
          }
        }
      }),
      RUNS,
    );
  });

  test("is sound for a two-column key", () => {
    fc.assert(
      fc.property(rows, whereClause, whereClause, (data, a, b) => {
        db.exec("DELETE FROM t");
        const insert = db.prepare("INSERT INTO t (k, x) VALUES (?, ?)");
        for (const row of data) insert.run(row.k, row.x);
        // Mirror the generator onto x so that both key columns get restricted.
        const bx = b.sql.replace(/\bk\b/g, "x").replace(/t\.x/g, "t.x");
        const sql = `SELECT k, x FROM t WHERE ${a.sql} AND ${bx}`;
        const params = [...a.params, ...b.params];
        const predicate = shardKeyPredicate(analyze(sql, { dialect: "sqlite" }), "t", ["k", "x"], params);
        const matching = db.prepare(sql).all(...params) as Array<{ k: number | null; x: number | null }>;
        for (const row of matching) expect(contains(predicate, [row.k, row.x])).toBe(true);
        if (a.pure && b.pure) expect(["points", "none"]).toContain(predicate.kind);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// (3) splitInsert round trip: the parts of a partition, executed, insert exactly the original rows.

const cell = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map((v) => ({ literal: String(v), value: v as SqlValue })),
  fc.string({ maxLength: 8 }).map((s) => ({ literal: `'${s.split("'").join("''")}'`, value: s as SqlValue })),
  fc.constant({ literal: "NULL", value: null as SqlValue }),
);
const insertRow = fc.tuple(cell, cell, fc.boolean(), fc.boolean());

function execute(db: Database.Database, sql: string, params: SqlValue[]): void {
  const statement = db.prepare(sql);
  if (statement.reader) statement.all(...params);
  else statement.run(...params);
}

describe("splitInsert", () => {
  test("a partition of the rows inserts exactly the original rows", () => {
    fc.assert(
      fc.property(
        fc.array(insertRow, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.infiniteStream(fc.nat()),
        fc.constantFrom("", " ON CONFLICT (id) DO UPDATE SET v = ?", " RETURNING id"),
        (cells, parts, choices, tail) => {
          const params: SqlValue[] = [];
          const tuples = cells.map(([a, b, paramA, paramB], id) => {
            const values = [String(id)];
            for (const [c, asParam] of [[a, paramA], [b, paramB]] as const) {
              if (asParam) {
                values.push("?");
                params.push(c.value);
              } else values.push(c.literal);
            }
            return `(${values.join(", ")})`;
          });
          if (tail.includes("?")) params.push("conflict");
          const sql = `INSERT INTO r (id, v, w) VALUES ${tuples.join(", ")}${tail}`;
          const groups: number[][] = Array.from({ length: parts }, () => []);
          const iterator = choices[Symbol.iterator]();
          cells.forEach((_, i) => groups[iterator.next().value % parts]!.push(i));

          const whole = new Database(":memory:");
          const split = new Database(":memory:");
          try {
            for (const db of [whole, split]) db.exec("CREATE TABLE r (id INTEGER PRIMARY KEY, v, w)");
            execute(whole, sql, params);
            for (const group of groups) {
              if (group.length === 0) continue;
              const part = splitInsert(sql, group, { dialect: "sqlite", params });
              expect(analyze(part.sql, { dialect: "sqlite" }).insert!.rows!.length).toBe(group.length);
              execute(split, part.sql, part.params);
            }
            const read = (db: Database.Database) => db.prepare("SELECT id, v, w, typeof(v) AS tv, typeof(w) AS tw FROM r ORDER BY id").all();
            expect(read(split)).toEqual(read(whole));
          } finally {
            whole.close();
            split.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
