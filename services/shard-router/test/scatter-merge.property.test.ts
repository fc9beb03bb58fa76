import fc from "fast-check";
import { common, fromValue } from "@mycelium/proto";
import { isMyceliumError } from "@mycelium/rpc";
import { analyze, loadSqlParser, type SqlValue } from "@mycelium/sql";
import { mergeResults } from "../../coordinator/src/core/merge";
import { planStatement, type RoutingSnapshot } from "../src/core/route-planner";
import { initialKeyRanges, TableLayout } from "../src/core/table-layout";
import { openMemoryDatabase, readRows, type SqliteDatabase } from "./support/sqlite";

/**
 * Scatter-gather against one database: random rows split over 2–5 shards (real SQLite databases, the
 * co-located `parts` rows on the same shard as their item), random SELECTs from a grammar. For every
 * query the router's plan is run shard by shard, the coordinator's mergeResults combines the results, and
 * the answer must equal the same SELECT on one database holding every row: same columns, same rows, in
 * the same order where ORDER BY determines it (the generator orders by a unique key when it asks for a
 * LIMIT), as multisets otherwise. fast-check prints the seed and the shrunk case on failure; replay with
 * FC_SEED=<seed> (and FC_PATH=<path>).
 */

const schema = [
  "CREATE TABLE items (id INTEGER PRIMARY KEY, grp TEXT, n INTEGER, r REAL, s TEXT)",
  "CREATE TABLE parts (item_id INTEGER NOT NULL, seq INTEGER NOT NULL, qty INTEGER, PRIMARY KEY (item_id, seq))",
];

interface Item {
  id: number;
  grp: string | null;
  n: SqlValue;
  r: number | null;
  s: string | null;
}

// ---- data

const groupValue = fc.constantFrom<string | null>("a", "b", "c", "B", "é", null);
const integerValue = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -20, max: 20 }) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom<SqlValue>(2 ** 40, -(2 ** 40), "7x", 3.5) }, // other types in an INTEGER column
);
const realValue = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: -400, max: 400 }).map((x) => x / 4) }, { weight: 1, arbitrary: fc.constant(null) });
const textValue = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("apple", "Apple", "banana", "", "zeta", "😀", "\uE000", "ab", "a b") },
  { weight: 1, arbitrary: fc.constant(null) },
);
const itemsArbitrary = fc
  .uniqueArray(fc.integer({ min: 1, max: 400 }), { minLength: 0, maxLength: 40 })
  .chain((ids) => fc.tuple(...ids.map((id) => fc.record({ id: fc.constant(id), grp: groupValue, n: integerValue, r: realValue, s: textValue }))))
  .map((items) => items as Item[]);
const partsArbitrary = fc.array(fc.record({ seq: fc.integer({ min: 1, max: 3 }), qty: fc.option(fc.integer({ min: 0, max: 9 })), pick: fc.nat() }), { maxLength: 40 });

// ---- queries

interface Query {
  sql: string;
  params: SqlValue[];
  /** ORDER BY fixes the order of the whole answer (ties impossible), so compare sequences. */
  ordered: boolean;
}

const columns = ["id", "grp", "n", "r", "s"] as const;

const comparison = fc.oneof(
  fc.tuple(fc.constantFrom("n", "r", "id"), fc.constantFrom("=", "<", ">", "<=", ">=", "<>"), fc.integer({ min: -10, max: 200 })).map(([c, op, v]) => ({ sql: `${c} ${op} ?`, params: [v] as SqlValue[] })),
  fc.tuple(fc.constantFrom("grp", "s"), fc.constantFrom("=", "<", ">="), fc.constantFrom("a", "b", "apple", "Apple")).map(([c, op, v]) => ({ sql: `${c} ${op} '${v}'`, params: [] as SqlValue[] })),
  fc.constantFrom("n IS NULL", "s IS NOT NULL", "grp IN ('a', 'c')", "n BETWEEN -5 AND 5").map((sql) => ({ sql, params: [] as SqlValue[] })),
  fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 4 }).map((ids) => ({ sql: `id IN (${ids.join(", ")})`, params: [] as SqlValue[] })),
);
const where = fc.option(
  fc.tuple(comparison, fc.option(fc.tuple(fc.constantFrom("AND", "OR"), comparison))).map(([a, more]) =>
    more ? { sql: ` WHERE ${a.sql} ${more[0]} ${more[1].sql}`, params: [...a.params, ...more[1].params] } : { sql: ` WHERE ${a.sql}`, params: a.params },
  ),
  { nil: { sql: "", params: [] as SqlValue[] } },
);
const direction = fc.constantFrom("", " DESC", " ASC NULLS LAST", " DESC NULLS FIRST");
const limitClause = fc.option(
  fc.tuple(fc.integer({ min: 0, max: 12 }), fc.option(fc.integer({ min: 0, max: 10 })), fc.boolean()).map(([limit, offset, asParams]) =>
    asParams
      ? { sql: ` LIMIT ?${offset === null ? "" : " OFFSET ?"}`, params: offset === null ? [limit] : [limit, offset] }
      : { sql: ` LIMIT ${limit}${offset === null ? "" : ` OFFSET ${offset}`}`, params: [] as SqlValue[] },
  ),
  { nil: null },
);

/** Plain rows: any columns (or *), ORDER BY any columns with id last when limited. */
const rowsQuery: fc.Arbitrary<Query> = fc
  .record({
    star: fc.boolean(),
    select: fc.uniqueArray(fc.constantFrom(...columns), { minLength: 1, maxLength: 4 }),
    where,
    order: fc.uniqueArray(fc.tuple(fc.constantFrom(...columns), direction), { maxLength: 3, selector: ([c]) => c }),
    limit: limitClause,
  })
  .map(({ star, select, where, order, limit }) => {
    const keys = [...order];
    if (limit && !keys.some(([c]) => c === "id")) keys.push(["id", ""]);
    const ordered = keys.some(([c]) => c === "id");
    const orderSql = keys.length ? ` ORDER BY ${keys.map(([c, d]) => c + d).join(", ")}` : "";
    return {
      sql: `SELECT ${star ? "*" : select.join(", ")} FROM items${where.sql}${orderSql}${limit?.sql ?? ""}`,
      params: [...where.params, ...(limit?.params ?? [])],
      ordered,
    };
  });

/** DISTINCT over output columns, ordered by all of them when limited. */
const distinctQuery: fc.Arbitrary<Query> = fc
  .record({ select: fc.uniqueArray(fc.constantFrom("grp", "n", "s"), { minLength: 1, maxLength: 2 }), where, dirs: fc.array(direction, { minLength: 2, maxLength: 2 }), limit: limitClause, sorted: fc.boolean() })
  .map(({ select, where, dirs, limit, sorted }) => {
    const order = sorted || limit ? ` ORDER BY ${select.map((c, i) => c + dirs[i]!).join(", ")}` : "";
    return { sql: `SELECT DISTINCT ${select.join(", ")} FROM items${where.sql}${order}${order ? (limit?.sql ?? "") : ""}`, params: [...where.params, ...(order ? (limit?.params ?? []) : [])], ordered: order !== "" };
  });

const aggregate = fc.constantFrom("COUNT(*)", "COUNT(n)", "SUM(n)", "MIN(n)", "MAX(n)", "AVG(n)", "SUM(r)", "MIN(s)", "MAX(s)", "AVG(r)", "MAX(grp)", "COUNT(s)");
const havingAtom = fc.oneof(
  fc.tuple(fc.constantFrom("COUNT(*)", "SUM(n)", "MIN(n)", "MAX(r)", "AVG(n)", "COUNT(s)"), fc.constantFrom("=", "<>", "<", "<=", ">", ">="), fc.integer({ min: -5, max: 6 })).map(([a, op, v]) => `${a} ${op} ${v}`),
  fc.constantFrom("MIN(s) IS NULL", "MAX(n) IS NOT NULL", "SUM(n) BETWEEN -10 AND 10", "AVG(r) NOT BETWEEN 0 AND 20", "MAX(s) > 'b'"),
);
const having = fc.option(
  fc.tuple(havingAtom, fc.option(fc.tuple(fc.constantFrom("AND", "OR", "AND NOT"), havingAtom))).map(([a, more]) => ` HAVING ${a}${more ? ` ${more[0]} ${more[1]}` : ""}`),
  { nil: "" },
);

/** GROUP BY (or one group) with combinable aggregates, HAVING, ORDER BY the keys or an aggregate. */
const groupQuery: fc.Arbitrary<Query> = fc
  .record({
    keys: fc.uniqueArray(fc.constantFrom("grp", "n", "s"), { maxLength: 2 }),
    showKeys: fc.boolean(),
    aggregates: fc.uniqueArray(aggregate, { minLength: 1, maxLength: 4 }),
    where,
    having,
    orderBy: fc.constantFrom("none", "keys", "aggregate"),
    dirs: fc.array(direction, { minLength: 3, maxLength: 3 }),
    limit: limitClause,
  })
  .map(({ keys, showKeys, aggregates, where, having, orderBy, dirs, limit }) => {
    const select = [...(showKeys ? keys : []), ...aggregates];
    let order = "";
    let ordered = keys.length === 0;
    if (keys.length > 0 && (orderBy !== "none" || limit)) {
      // Groups are unique by their keys, so ordering by every key (after anything) fixes the order.
      const lead = orderBy === "aggregate" ? [`${aggregates[0]}${dirs[2]}`] : [];
      order = ` ORDER BY ${[...lead, ...keys.map((k, i) => k + dirs[i]!)].join(", ")}`;
      ordered = true;
    }
    const limitSql = ordered ? (limit?.sql ?? "") : "";
    return {
      sql: `SELECT ${select.join(", ")} FROM items${where.sql}${keys.length ? ` GROUP BY ${keys.join(", ")}` : ""}${having}${order}${limitSql}`,
      params: [...where.params, ...(ordered ? (limit?.params ?? []) : [])],
      ordered,
    };
  });

/** GROUP BY the shard key: any aggregate, HAVING anything, pushed down whole. */
const localGroupQuery: fc.Arbitrary<Query> = fc
  .record({ aggregates: fc.uniqueArray(fc.constantFrom("COUNT(DISTINCT n)", "total(r)", "AVG(n)", "group_concat(s)", "COUNT(*)"), { minLength: 1, maxLength: 3 }), where, limit: limitClause })
  .map(({ aggregates, where, limit }) => ({
    sql: `SELECT id, ${aggregates.join(", ")} FROM items${where.sql} GROUP BY id HAVING COUNT(*) >= 1 ORDER BY id DESC${limit?.sql ?? ""}`,
    params: [...where.params, ...(limit?.params ?? [])],
    ordered: true,
  }));

/** Co-located join of items and parts on the shard key. */
const joinQuery: fc.Arbitrary<Query> = fc
  .record({ kind: fc.constantFrom("rows", "left", "group"), limit: limitClause, key: fc.option(fc.integer({ min: 1, max: 400 })) })
  .map(({ kind, limit, key }) => {
    const filter = key === null ? "" : ` WHERE i.id = ${key}`;
    if (kind === "group") {
      return { sql: `SELECT i.grp, COUNT(*), SUM(p.qty), MAX(p.seq) FROM items i JOIN parts p ON p.item_id = i.id${filter} GROUP BY i.grp ORDER BY i.grp${limit?.sql ?? ""}`, params: limit?.params ?? [], ordered: true };
    }
    const join = kind === "left" ? "LEFT JOIN" : "JOIN";
    return { sql: `SELECT i.id, p.seq, p.qty, i.s FROM items i ${join} parts p ON p.item_id = i.id${filter} ORDER BY i.id, p.seq${limit?.sql ?? ""}`, params: limit?.params ?? [], ordered: true };
  });

const query = fc.oneof(
  { weight: 4, arbitrary: rowsQuery },
  { weight: 2, arbitrary: distinctQuery },
  { weight: 5, arbitrary: groupQuery },
  { weight: 1, arbitrary: localGroupQuery },
  { weight: 2, arbitrary: joinQuery },
);

// ---- the cluster

function snapshotWith(shardCount: number): RoutingSnapshot {
  const layouts = new Map<string, TableLayout>();
  const ddl = schema.map((sql) => analyze(sql, { dialect: "sqlite" }).ddl!);
  for (const [i, table] of ["items", "parts"].entries()) {
    const policy = common.TablePolicy.create({
      table,
      replicationFactor: 0.5,
      shardKeys: [table === "items" ? "id" : "item_id"],
      shardFunction: common.ShardFunction.SHARD_FUNCTION_HASH,
      initialShardCount: shardCount,
      colocationGroup: "stock",
    });
    const shards = initialKeyRanges(policy, shardCount).map((keyRange, index) =>
      common.ShardInfo.create({ shardId: `${table}-${index}`, table, index, keyRange, epoch: 1, primaryNodeId: `n${index}`, replicaNodeIds: [`n${index}`], state: common.ShardState.SHARD_STATE_ACTIVE }),
    );
    const info = ddl[i]!;
    layouts.set(table, new TableLayout(policy, shards, { table, columns: [...info.columns!], primaryKey: [...info.primaryKey!], ddl: [schema[i]!], version: 1 }));
  }
  return { layout: (table) => layouts.get(table), nodeAddress: (node) => `${node}:1` };
}

function load(db: SqliteDatabase, items: Item[], parts: Array<{ item_id: number; seq: number; qty: number | null }>): void {
  const insertItem = db.prepare("INSERT INTO items VALUES (?, ?, ?, ?, ?)");
  const insertPart = db.prepare("INSERT OR IGNORE INTO parts VALUES (?, ?, ?)");
  for (const item of items) insertItem.run(item.id, item.grp, item.n, item.r, item.s);
  for (const part of parts) insertPart.run(part.item_id, part.seq, part.qty);
}

// ---- comparison

function normalize(value: SqlValue): unknown {
  if (typeof value === "number" && !Number.isInteger(value)) return Number(value.toPrecision(12));
  if (typeof value === "bigint") return `${value}n`;
  return value;
}

function rowsText(rows: SqlValue[][]): string[] {
  return rows.map((row) => JSON.stringify(row.map(normalize)));
}

beforeAll(() => loadSqlParser());

const counters = { queries: 0, scatter: 0, refused: 0 };

test("a scatter-gather answer equals the one-database answer", () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 5 }), itemsArbitrary, partsArbitrary, fc.array(query, { minLength: 1, maxLength: 6 }), (shardCount, items, partPicks, queries) => {
      const snapshot = snapshotWith(shardCount);
      const itemsLayout = snapshot.layout("items")!;
      const parts = items.length === 0 ? [] : partPicks.map((p) => ({ item_id: items[p.pick % items.length]!.id, seq: p.seq, qty: p.qty }));
      const whole = openMemoryDatabase();
      const shards = Array.from({ length: shardCount }, () => openMemoryDatabase());
      try {
        for (const db of [whole, ...shards]) for (const sql of schema) db.exec(sql);
        load(whole, items, parts);
        shards.forEach((db, index) => {
          const mine = (id: number) => itemsLayout.shards.indexOf(itemsLayout.shardForKey([id])) === index;
          load(db, items.filter((item) => mine(item.id)), parts.filter((part) => mine(part.item_id)));
        });
        for (const q of queries) {
          counters.queries++;
          const expected = readRows(whole, q.sql, q.params);
          let plan;
          try {
            plan = planStatement({ sql: q.sql, params: q.params, analysis: analyze(q.sql, { dialect: "sqlite", params: q.params }) }, snapshot);
          } catch (error) {
            if (isMyceliumError(error)) counters.refused++;
            throw new Error(`refused ${q.sql} ${JSON.stringify(q.params)}: ${String(error)}`);
          }
          const parts = plan.targets.map((target) => {
            const index = itemsLayout.shards.findIndex((s) => s.shardId === target.shard!.shardId);
            return readRows(shards[index]!, target.statement!.sql, target.statement!.params.map(fromValue));
          });
          if (plan.targets.length > 1) counters.scatter++;
          const actual = plan.merge ? mergeResults(plan.merge, parts) : parts[0]!;
          const context = `${q.sql} ${JSON.stringify(q.params)}\nshard statement: ${plan.targets[0]!.statement!.sql}`;
          expect({ context, columns: actual.columns }).toEqual({ context, columns: expected.columns });
          const want = rowsText(expected.rows);
          const got = rowsText(actual.rows);
          if (q.ordered) expect({ context, rows: got }).toEqual({ context, rows: want });
          else expect({ context, rows: [...got].sort() }).toEqual({ context, rows: [...want].sort() });
        }
      } finally {
        for (const db of [whole, ...shards]) db.close();
      }
    }),
    {
      numRuns: Number(process.env.FC_RUNS ?? 300),
      ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
      ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
    },
  );
  // The grammar must mostly produce statements that really scatter.
  expect(counters.scatter).toBeGreaterThan(counters.queries / 2);
});
