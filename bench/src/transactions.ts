/**
 * Transaction throughput and latency through a real local cluster (separate processes, mutual TLS on
 * loopback, SQLite shards with synchronous=FULL), beside baselines measured in the same run: raw
 * better-sqlite3 durable autocommit, a bare grpc-js mTLS echo round trip, and a 4 KB fdatasync.
 *
 * Usage: node bench/dist/transactions.js [seconds-per-case=5] [sqlite|postgres]
 * With postgres, every node keeps its shards in its own PostgreSQL database, and the baseline adds a
 * plain node-postgres client doing the same 2-shard work with PREPARE TRANSACTION / COMMIT PREPARED.
 */
import { common, router } from "@mycelium/proto";
import { startPostgresServer, TestCluster } from "@mycelium/testkit";
import { plainPgTwoPhase } from "./pg-baseline";
import { fdatasync4k, rawSqliteAutocommit } from "./baselines";
import { rpcEchoBaseline } from "./rpc-echo";
import { formatRow, header, measure, productionHeartbeats, type Summary } from "./stats";

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const backend = (process.argv[3] ?? "sqlite") as "sqlite" | "postgres";
  const started = Date.now();
  const baselineSqlite = await rawSqliteAutocommit(2000);
  const fsync = await fdatasync4k(1000);
  const echo = await rpcEchoBaseline(2000);

  const pg = backend === "postgres" ? await startPostgresServer({ maxConnections: 300 }) : null;
  const nodeDatabases = pg
    ? {
        v1: { backend: "postgres" as const, url: await pg.createDatabase("bench_v1") },
        v2: { backend: "postgres" as const, url: await pg.createDatabase("bench_v2") },
        m1: { backend: "postgres" as const, url: await pg.createDatabase("bench_m1") },
      }
    : undefined;
  const cluster = await TestCluster.start({ validators: 2, miners: 1, logLevel: "warn", ...(nodeDatabases ? { nodeDatabases } : {}), env: { ...productionHeartbeats, MYCELIUM_LOG_LEVEL: "warn", MYCELIUM_TRANSACTION_TIMEOUT: "30s", MYCELIUM_PREPARE_TIMEOUT: "5s", MYCELIUM_COMMIT_TIMEOUT: "5s" } });
  const results: Array<[string, Summary]> = [];
  try {
    const db = cluster.client("admin", { deadlineMs: 30_000 });
    await db.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "t", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 0.5, minValidatorCopies: 1 }) }));
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
    // Accounts for the 2-shard case: pairs whose rows are on different shards (and different nodes).
    const accounts = Array.from({ length: 512 }, (_, i) => 1_000_000 + i);
    await db.execute(`INSERT INTO t (id, v) VALUES ${accounts.map(() => "(?, 0)").join(", ")}`, accounts);
    const primaryOf = new Map<number, string>();
    for (const id of accounts) primaryOf.set(id, (await db.explain("SELECT * FROM t WHERE id = ?", [id])).targets[0]!.primaryNodeId);
    const left = accounts.filter((id) => primaryOf.get(id) === primaryOf.get(accounts[0]!));
    const right = accounts.filter((id) => primaryOf.get(id) !== primaryOf.get(accounts[0]!));

    let nextId = 1;
    const byTime = async (concurrency: number, operation: (i: number) => Promise<unknown>): Promise<Summary> => {
      // Count-bounded rounds until the time budget is spent: measure() needs a count.
      await measure(50, concurrency, operation);
      const probe = await measure(200, concurrency, operation);
      const count = Math.max(200, Math.round(probe.throughputPerSecond * seconds));
      return measure(count, concurrency, operation);
    };
    const singleShard = (i: number) => db.execute("INSERT INTO t (id, v) VALUES (?, ?)", [nextId++, i]);
    const twoShard = (i: number) =>
      db.executeTransaction([
        { sql: "UPDATE t SET v = v - 1 WHERE id = ?", params: [left[i % left.length]!] },
        { sql: "UPDATE t SET v = v + 1 WHERE id = ?", params: [right[(i * 7) % right.length]!] },
      ]);
    results.push(["single-shard INSERT (one-phase), sequential", await byTime(1, singleShard)]);
    results.push(["single-shard INSERT (one-phase), 16 in flight", await byTime(16, singleShard)]);
    results.push(["2-shard transfer (2PC), sequential", await byTime(1, twoShard)]);
    results.push(["2-shard transfer (2PC), 16 in flight", await byTime(16, twoShard)]);
  } finally {
    await cluster.stop();
  }
  let plain1: Summary | null = null;
  let plain16: Summary | null = null;
  if (pg && nodeDatabases) {
    plain1 = await plainPgTwoPhase([nodeDatabases.v1.url, nodeDatabases.v2.url], 1000, 1);
    plain16 = await plainPgTwoPhase([nodeDatabases.v1.url, nodeDatabases.v2.url], 3000, 16);
    await pg.stop();
  }

  console.log(`\nMycelium transaction benchmark on ${backend} nodes (${new Date().toISOString()}, ${seconds} s per case, node ${process.version})`);
  console.log(header);
  console.log(formatRow("baseline: raw better-sqlite3 durable autocommit", baselineSqlite));
  console.log(formatRow("baseline: fdatasync of 4 KB", fsync));
  console.log(formatRow("baseline: bare grpc-js mTLS echo, sequential", echo.bare));
  console.log(formatRow("baseline: Mycelium rpc kit echo, sequential", echo.mycelium));
  if (plain1 && plain16) {
    console.log(formatRow("baseline: plain pg PREPARE/COMMIT PREPARED, 2 dbs, seq", plain1));
    console.log(formatRow("baseline: plain pg PREPARE/COMMIT PREPARED, 2 dbs, 16", plain16));
  }
  for (const [label, summary] of results) console.log(formatRow(label, summary));
  const [single1, single16, two1, two16] = results.map(([, s]) => s) as [Summary, Summary, Summary, Summary];
  const target2pc = 1.5 * (2 * echo.bare.p50Ms + 2 * fsync.p50Ms);
  console.log("\nratios (targets in parentheses):");
  console.log(`  single-shard throughput at 16 / raw better-sqlite3 autocommit: ${(single16.throughputPerSecond / baselineSqlite.throughputPerSecond).toFixed(2)}  (≥ 1)`);
  console.log(`  2-shard p50 sequential / (1.5 × (2 × echo RTT + 2 × fdatasync) = ${target2pc.toFixed(2)} ms): ${(two1.p50Ms / target2pc).toFixed(2)}  (≤ 1)`);
  console.log(`  2-shard throughput at 16 / single-shard throughput at 16: ${(two16.throughputPerSecond / single16.throughputPerSecond).toFixed(2)}  (≥ 0.6)`);
  if (plain1 && plain16) {
    console.log(`  2-shard p50 sequential / plain pg 2PC p50: ${(two1.p50Ms / plain1.p50Ms).toFixed(2)}`);
    console.log(`  2-shard throughput at 16 / plain pg 2PC at 16: ${(two16.throughputPerSecond / plain16.throughputPerSecond).toFixed(2)}`);
  }
  console.log(`  sequential single-shard p50 / echo RTT p50: ${(single1.p50Ms / echo.bare.p50Ms).toFixed(1)} round trips`);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
