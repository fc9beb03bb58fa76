// Durable single-row writes on one shard: raw better-sqlite3 autocommit (synchronous=FULL, WAL) beside the
// ShardStore's executeAutocommit called one at a time and by 32 concurrent callers (group commit), and the
// same through the PostgreSQL backend.
//
//   node -r ./packages/db/test/support/register-ts.js packages/db/bench/autocommit-bench.ts
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { openShardStore, testing, type ShardStore, type ShardStoreOptions } from "@mycelium/db";

const rate = (count: number, start: number) => count / ((performance.now() - start) / 1000);
let nextId = 0;
const insert = () => ({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", params: [++nextId, "x".repeat(64)] });

function rawSqlite(dir: string, count: number): number {
  const db = new Database(path.join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const statement = db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
  const start = performance.now();
  for (let index = 0; index < count; index += 1) statement.run(index, "x".repeat(64));
  const result = rate(count, start);
  db.close();
  return result;
}

async function store(options: ShardStoreOptions, sequential: number, concurrent: number, callers: number): Promise<[number, number]> {
  const shards: ShardStore = await openShardStore(options);
  try {
    await shards.ensureShard("s1");
    await shards.applySchema("s1", ["CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"]);
    let start = performance.now();
    for (let index = 0; index < sequential; index += 1) await shards.executeAutocommit("s1", [insert()]);
    const one = rate(sequential, start);
    start = performance.now();
    await Promise.all(
      Array.from({ length: callers }, async () => {
        for (let index = 0; index < concurrent / callers; index += 1) await shards.executeAutocommit("s1", [insert()]);
      }),
    );
    return [one, rate(concurrent, start)];
  } finally {
    await shards.close();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-db-bench-"));
  const server = await testing.startPostgresServer();
  try {
    const raw = rawSqlite(dir, 2000);
    const [sqliteOne, sqliteMany] = await store({ kind: "sqlite", dataDir: path.join(dir, "node") }, 2000, 6400, 32);
    const [pgOne, pgMany] = await store(
      { kind: "postgres", url: await server.createDatabase("bench"), sslMode: "disable", maxConnections: 32 },
      1000,
      3200,
      32,
    );
    const line = (name: string, value: number) => console.log(`${name.padEnd(52)} ${value.toFixed(0).padStart(7)} writes/s`);
    line("raw better-sqlite3 autocommit (FULL)", raw);
    line("sqlite store executeAutocommit, 1 caller", sqliteOne);
    line("sqlite store executeAutocommit, 32 callers", sqliteMany);
    line("postgres store executeAutocommit, 1 caller", pgOne);
    line("postgres store executeAutocommit, 32 callers", pgMany);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
