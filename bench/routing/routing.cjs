#!/usr/bin/env node
// Analysis + routing throughput on one core: statements/s and per-statement p50/p99, with the analysis
// cache hit and missed, for a point SELECT, a multi-row INSERT split over shards and a scatter aggregate,
// next to a baseline measured in the same run: the raw libpg-query parse of the same statement.
//
//   pnpm exec turbo run build --filter @mycelium/shard-router && node bench/routing/routing.cjs [--seconds 1.5]
//
// Plain CommonJS over the built packages (dist/), so it needs no build step of its own.
"use strict";
const path = require("node:path");
const root = path.join(__dirname, "..", "..");
const sql = require(path.join(root, "packages/sql/dist/index.js"));
const proto = require(path.join(root, "packages/proto/dist/index.js"));
const { planStatement } = require(path.join(root, "services/shard-router/dist/core/route-planner.js"));
const { TableLayout, initialKeyRanges } = require(path.join(root, "services/shard-router/dist/core/table-layout.js"));
const libpg = require(require.resolve("libpg-query", { paths: [path.join(root, "packages/sql")] }));

const secondsArg = process.argv.indexOf("--seconds");
const seconds = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 1.5;

function layout(table, ddl, shardKeys, shards, extra = {}) {
  const policy = proto.common.TablePolicy.create({
    table,
    replicationFactor: 0.5,
    shardKeys,
    shardFunction: proto.common.ShardFunction.SHARD_FUNCTION_HASH,
    initialShardCount: shards,
    colocationGroup: "accounts",
    ...extra,
  });
  const info = sql.analyze(ddl, { dialect: "sqlite" }).ddl;
  const shardInfos = initialKeyRanges(policy, shards).map((keyRange, index) =>
    proto.common.ShardInfo.create({
      shardId: `${table}-${String(index).padStart(4, "0")}`,
      table,
      index,
      keyRange,
      epoch: 1,
      primaryNodeId: `n${index % 5}`,
      replicaNodeIds: [`n${index % 5}`, `n${(index + 1) % 5}`],
      state: proto.common.ShardState.SHARD_STATE_ACTIVE,
    }),
  );
  return new TableLayout(policy, shardInfos, { table, columns: [...info.columns], primaryKey: [...info.primaryKey], ddl: [ddl], version: 1 });
}

function snapshot() {
  const layouts = new Map([
    ["users", layout("users", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, country TEXT)", ["id"], 16)],
  ]);
  return { layout: (t) => layouts.get(t), nodeAddress: (n) => `${n}:7100` };
}

const insertRows = 8;
const statements = [
  { label: "point SELECT", sql: "SELECT id, name, age FROM users WHERE id = ?", params: (i) => [i] },
  {
    label: `INSERT ${insertRows} rows (split over shards)`,
    sql: `INSERT INTO users (id, name, age) VALUES ${Array.from({ length: insertRows }, () => "(?, ?, ?)").join(", ")}`,
    params: (i) => Array.from({ length: insertRows }, (_, r) => [i * insertRows + r, `user${r}`, 20 + r]).flat(),
  },
  {
    label: "scatter aggregate (GROUP BY/HAVING/ORDER/LIMIT)",
    sql: "SELECT country, COUNT(*), AVG(age) FROM users WHERE age > ? GROUP BY country HAVING COUNT(*) > ? ORDER BY 2 DESC LIMIT 10",
    params: () => [18, 1],
  },
];

/** Runs `operation` repeatedly for `seconds`, timing each call. */
function measure(operation) {
  for (let i = 0; i < 200; i++) operation(i); // warm up
  const samples = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let i = 0;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    operation(i++);
    samples.push(performance.now() - t0);
  }
  const elapsed = performance.now() - started;
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { perSecond: (samples.length / elapsed) * 1000, p50: at(0.5) * 1000, p99: at(0.99) * 1000 };
}

function row(label, r, baseline) {
  const ratio = baseline ? `${(baseline.perSecond / r.perSecond).toFixed(2)}× baseline time` : "";
  return `  ${label.padEnd(40)} ${r.perSecond.toFixed(0).padStart(9)}/s   p50 ${r.p50.toFixed(1).padStart(7)} µs   p99 ${r.p99.toFixed(1).padStart(7)} µs   ${ratio}`;
}

async function main() {
  await sql.loadSqlParser();
  await libpg.loadModule();
  const snap = snapshot();
  console.log(`Analysis + routing, one core (node ${process.version}, ${require("node:os").cpus()[0].model}, load ${require("node:os").loadavg()[0].toFixed(2)})`);
  for (const statement of statements) {
    const pgText = sql.toDialectSql(statement.sql, "sqlite", "postgres");
    const hitCache = sql.createAnalysisCache();
    const missCache = sql.createAnalysisCache({ maxEntries: 1000 });
    const results = {
      baseline: measure(() => libpg.parseSync(pgText)),
      analyzeMiss: measure((i) => missCache.analyze(`${statement.sql} -- ${i}`, { dialect: "sqlite", params: statement.params(i) })),
      analyzeHit: measure((i) => hitCache.analyze(statement.sql, { dialect: "sqlite", params: statement.params(i) })),
      routeOnly: (() => {
        const analysis = sql.analyze(statement.sql, { dialect: "sqlite" });
        return measure((i) => planStatement({ sql: statement.sql, params: statement.params(i), analysis }, snap));
      })(),
      hit: measure((i) => {
        const params = statement.params(i);
        const analysis = hitCache.analyze(statement.sql, { dialect: "sqlite", params });
        return planStatement({ sql: statement.sql, params, analysis }, snap);
      }),
      miss: measure((i) => {
        const text = `${statement.sql} -- routed ${i}`;
        const params = statement.params(i);
        const analysis = missCache.analyze(text, { dialect: "sqlite", params });
        return planStatement({ sql: text, params, analysis }, snap);
      }),
    };
    const plan = planStatement({ sql: statement.sql, params: statement.params(1), analysis: sql.analyze(statement.sql, { dialect: "sqlite" }) }, snap);
    console.log(`\n${statement.label}: ${plan.targets.length} target(s)${plan.merge ? ", merge plan" : ""}`);
    console.log(row("baseline: libpg-query parse only", results.baseline));
    console.log(row("analysis, cache miss", results.analyzeMiss, results.baseline));
    console.log(row("analysis, cache hit", results.analyzeHit, results.baseline));
    console.log(row("routing only (analysis given)", results.routeOnly, results.baseline));
    console.log(row("analysis + routing, cache miss", results.miss, results.baseline));
    console.log(row("analysis + routing, cache hit", results.hit, results.baseline));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
