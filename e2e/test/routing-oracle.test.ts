/**
 * The routing oracle (issues 3 and 5): random schema-conforming writes and random queries from a grammar
 * of the supported SELECT / INSERT / UPDATE / DELETE forms go through a real three-node cluster and, in
 * the same order, to one plain database of the same backend holding every row. Every answer must be
 * the same: rows affected for writes; rows for reads (in order when ORDER BY fixes the order, as
 * multisets otherwise). fast-check prints the seed on failure; replay with FC_SEED=<seed> FC_PATH=<path>.
 */
import Database from "better-sqlite3";
import fc from "fast-check";
import { Client } from "pg";
import { common, router, type SqlValue } from "@mycelium/proto";
import { startPostgresServer, TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";

jest.setTimeout(600_000);

const runs = Number(process.env.ORACLE_RUNS ?? 30);
const table = "CREATE TABLE items (id INTEGER PRIMARY KEY, grp TEXT, n INTEGER, r REAL, s TEXT)";

interface Oracle {
  run(sql: string, params: SqlValue[]): Promise<{ rows: SqlValue[][]; rowsAffected: number }>;
  close(): Promise<void>;
}

function sqliteOracle(): Oracle {
  const db = new Database(":memory:");
  db.exec(table);
  return {
    async run(sql, params) {
      const statement = db.prepare(sql);
      const bound = params.map((p) => (typeof p === "boolean" ? Number(p) : p));
      if (statement.reader) return { rows: (statement.raw(true).all(...bound) as SqlValue[][]), rowsAffected: 0 };
      return { rows: [], rowsAffected: statement.run(...bound).changes };
    },
    async close() {
      db.close();
    },
  };
}

async function postgresOracle(url: string): Promise<Oracle> {
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query(table);
  let n = 0;
  return {
    async run(sql, params) {
      const text = sql.replace(/\?/g, () => `$${++n}`);
      n = 0;
      const result = await client.query({ text, values: params as unknown[], rowMode: "array" });
      return result.command === "SELECT" ? { rows: result.rows as SqlValue[][], rowsAffected: 0 } : { rows: [], rowsAffected: result.rowCount ?? 0 };
    },
    async close() {
      await client.end();
    },
  };
}

/** Values the two paths may spell differently but mean alike: numeric text, bigints, floats. */
function normalize(value: SqlValue): unknown {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value)) return Number(Number(value).toPrecision(10));
  if (typeof value === "number") return Number(value.toPrecision(10));
  return value;
}

function canonical(rows: SqlValue[][], ordered: boolean): string[] {
  const lines = rows.map((row) => JSON.stringify(row.map(normalize)));
  return ordered ? lines : lines.sort();
}

// ---- the grammar -----------------------------------------------------------------------------------

type Op = { sql: string; params: SqlValue[]; read: boolean; ordered: boolean };

const id = fc.integer({ min: 1, max: 60 });
const grp = fc.constantFrom("a", "b", "c", null);
const n = fc.option(fc.integer({ min: -20, max: 20 }), { nil: null });
const r = fc.option(fc.integer({ min: -40, max: 40 }).map((x) => x / 4), { nil: null });
const s = fc.option(fc.constantFrom("apple", "banana", "cherry", "date", ""), { nil: null });
const row = fc.tuple(id, grp, n, r, s);

const condition = fc.oneof(
  fc.tuple(fc.constantFrom("n", "r", "id"), fc.constantFrom("=", "<", ">", "<=", ">="), fc.integer({ min: -10, max: 60 })).map(([c, op, v]) => ({ sql: `${c} ${op} ?`, params: [v] as SqlValue[] })),
  fc.tuple(fc.constantFrom("grp", "s"), fc.constantFrom("=", "<", ">")).chain(([c, op]) => fc.constantFrom("a", "b", "apple", "cherry").map((v) => ({ sql: `${c} ${op} ?`, params: [v] as SqlValue[] }))),
  fc.constantFrom("n IS NULL", "s IS NOT NULL", "grp IN ('a', 'c')", "n BETWEEN -5 AND 5", "id BETWEEN 10 AND 30").map((sql) => ({ sql, params: [] as SqlValue[] })),
  fc.uniqueArray(id, { minLength: 1, maxLength: 4 }).map((ids) => ({ sql: `id IN (${ids.map(() => "?").join(", ")})`, params: ids as SqlValue[] })),
  id.map((v) => ({ sql: "id = ?", params: [v] as SqlValue[] })),
);
const where = fc.option(
  fc.tuple(condition, fc.option(fc.tuple(fc.constantFrom("AND", "OR"), condition), { nil: null })).map(([a, more]) =>
    more ? { sql: ` WHERE ${a.sql} ${more[0]} ${more[1].sql}`, params: [...a.params, ...more[1].params] } : { sql: ` WHERE ${a.sql}`, params: a.params },
  ),
  { nil: { sql: "", params: [] as SqlValue[] } },
);

const insert = fc.uniqueArray(row, { minLength: 1, maxLength: 6, selector: (x) => x[0] }).map((rows): Op => ({
  sql: `INSERT INTO items (id, grp, n, r, s) VALUES ${rows.map(() => "(?, ?, ?, ?, ?)").join(", ")} ON CONFLICT (id) DO NOTHING`,
  params: rows.flat(),
  read: false,
  ordered: false,
}));
const update = fc.tuple(fc.constantFrom("n = n + 1", "s = 'updated'", "r = r * 2", "grp = 'b'"), where).map(([set, w]): Op => ({ sql: `UPDATE items SET ${set}${w.sql}`, params: w.params, read: false, ordered: false }));
const remove = where.map((w): Op => ({ sql: `DELETE FROM items${w.sql}`, params: w.params, read: false, ordered: false }));

const plainSelect = fc.tuple(fc.constantFrom("*", "id, n", "id, grp, s"), where).map(([cols, w]): Op => ({ sql: `SELECT ${cols} FROM items${w.sql}`, params: w.params, read: true, ordered: false }));
const orderedSelect = fc.tuple(where, fc.constantFrom("", " DESC"), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 5 })).map(([w, dir, limit, offset]): Op => ({
  sql: `SELECT id, n, s FROM items${w.sql} ORDER BY id${dir} LIMIT ${limit} OFFSET ${offset}`,
  params: w.params,
  read: true,
  ordered: true,
}));
const aggregate = fc.tuple(fc.constantFrom("COUNT(*)", "COUNT(n)", "SUM(n)", "MIN(n)", "MAX(s)", "MIN(r)", "AVG(n)"), where).map(([agg, w]): Op => ({ sql: `SELECT ${agg} FROM items${w.sql}`, params: w.params, read: true, ordered: false }));
const grouped = fc.tuple(fc.constantFrom("COUNT(*)", "SUM(n)", "MAX(id)", "AVG(r)"), where).map(([agg, w]): Op => ({ sql: `SELECT grp, ${agg} FROM items${w.sql} GROUP BY grp`, params: w.params, read: true, ordered: false }));
const distinct = where.map((w): Op => ({ sql: `SELECT DISTINCT grp FROM items${w.sql}`, params: w.params, read: true, ordered: false }));

const operation = fc.oneof(
  { weight: 4, arbitrary: insert },
  { weight: 2, arbitrary: update },
  { weight: 1, arbitrary: remove },
  { weight: 3, arbitrary: plainSelect },
  { weight: 2, arbitrary: orderedSelect },
  { weight: 2, arbitrary: aggregate },
  { weight: 2, arbitrary: grouped },
  { weight: 1, arbitrary: distinct },
);

describe.each(["sqlite", "postgres"] as const)("on %s nodes", (backend) => {
  let cluster: TestCluster;
  let db: MyceliumClient;
  let oracle: Oracle;
  let stopOracleServer: (() => Promise<void>) | null = null;

  beforeAll(async () => {
    cluster = await TestCluster.start({ validators: 2, miners: 1, backend });
    db = cluster.client("client", { deadlineMs: 20_000 });
    await cluster.client("admin").router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "items", shardKeys: ["id"], initialShardCount: 6, replicationFactor: 0.5 }) }));
    await db.execute(table);
    if (backend === "sqlite") {
      oracle = sqliteOracle();
    } else {
      const server = await startPostgresServer();
      stopOracleServer = () => server.stop();
      oracle = await postgresOracle(await server.createDatabase("oracle"));
    }
  });

  afterAll(async () => {
    await oracle?.close();
    await stopOracleServer?.();
    await cluster?.stop();
  });

  test(`${runs} random histories give the same answers through the cluster and from one database`, async () => {
    let statements = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 25 }), async (ops) => {
        await db.execute("DELETE FROM items");
        await oracle.run("DELETE FROM items", []);
        for (const op of ops) {
          statements++;
          const expected = await oracle.run(op.sql, op.params);
          const actual = await db.execute(op.sql, op.params);
          if (op.read) {
            expect({ sql: op.sql, params: op.params, rows: canonical(actual.rows, op.ordered) }).toEqual({ sql: op.sql, params: op.params, rows: canonical(expected.rows, op.ordered) });
          } else {
            expect({ sql: op.sql, params: op.params, rowsAffected: actual.rowsAffected }).toEqual({ sql: op.sql, params: op.params, rowsAffected: expected.rowsAffected });
          }
        }
      }),
      { numRuns: runs, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
    );
    process.stdout.write(`routing oracle on ${backend}: ${statements} statements matched\n`);
  });
});
