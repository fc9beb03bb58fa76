// Replication costs on one shard, same run, same machine:
// - primary write throughput with change capture on vs off (one caller; 32 concurrent callers), alternating
//   rounds (ROUNDS, default 3) and printing medians, because a shared machine's noise is larger than the effect,
// - apply throughput on a secondary (entries/s, single-row entries, batches of 500),
// - snapshot read and restore throughput (MB/s of row values).
//
//   node -r ./packages/db/test/support/register-ts.js packages/db/bench/replication-bench.ts
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { openShardStore, testing, type ChangeEntry, type ShardStore, type ShardStoreOptions, type SnapshotChunk } from "@mycelium/db";

const rate = (count: number, start: number) => count / ((performance.now() - start) / 1000);
let nextId = 0;
const insert = () => ({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", params: [++nextId, "x".repeat(64)] });
const line = (name: string, value: number, unit: string) => console.log(`${name.padEnd(60)} ${value.toFixed(unit === "MB/s" ? 1 : 0).padStart(8)} ${unit}`);

async function writes(options: ShardStoreOptions, sequential: number, concurrent: number, callers: number): Promise<{ one: number; many: number; store: ShardStore }> {
  const store = await openShardStore(options);
  await store.ensureShard("s1");
  await store.applySchema("s1", ["CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"]);
  let start = performance.now();
  for (let index = 0; index < sequential; index += 1) await store.executeAutocommit("s1", [insert()]);
  const one = rate(sequential, start);
  start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (let index = 0; index < concurrent / callers; index += 1) await store.executeAutocommit("s1", [insert()]);
    }),
  );
  return { one, many: rate(concurrent, start), store };
}

async function applyRate(primary: ShardStore, secondaryOptions: ShardStoreOptions): Promise<number> {
  const entries: ChangeEntry[] = [];
  for (;;) {
    const page = await primary.readChanges("s1", entries.length, 5000);
    if (page.length === 0) break;
    entries.push(...page);
  }
  const secondary = await openShardStore(secondaryOptions);
  try {
    await secondary.ensureShard("s1");
    await secondary.applyChanges("s1", entries.slice(0, 1)); // the schema
    const start = performance.now();
    for (let index = 1; index < entries.length; index += 500) await secondary.applyChanges("s1", entries.slice(index, index + 500));
    return rate(entries.length - 1, start);
  } finally {
    await secondary.close();
  }
}

async function snapshotRates(primaryOptions: ShardStoreOptions, replicaOptions: ShardStoreOptions, rows: number): Promise<{ read: number; restore: number; megabytes: number }> {
  const primary = await openShardStore(primaryOptions);
  const replica = await openShardStore(replicaOptions);
  try {
    await primary.ensureShard("snap");
    await primary.applySchema("snap", ["CREATE TABLE r (id BIGINT PRIMARY KEY, a TEXT, b BIGINT, c DOUBLE PRECISION)"]);
    for (let start = 0; start < rows; start += 1000) {
      await primary.executeAutocommit(
        "snap",
        Array.from({ length: 1000 }, (_, index) => ({
          sql: "INSERT INTO r (id, a, b, c) VALUES (?, ?, ?, ?)",
          params: [start + index, `row-${start + index}-${"y".repeat(80)}`, (start + index) * 7, (start + index) / 3],
        })),
      );
    }
    let bytes = 0;
    const chunks: SnapshotChunk[] = [];
    let begin = performance.now();
    for await (const chunk of primary.snapshot("snap")) {
      chunks.push(chunk);
      if (chunk.kind === "rows") for (const row of chunk.rows) bytes += 8 + String(row[1]).length + 8 + 8;
    }
    const readSeconds = (performance.now() - begin) / 1000;
    begin = performance.now();
    await replica.restoreSnapshot("snap", chunks);
    const restoreSeconds = (performance.now() - begin) / 1000;
    const megabytes = bytes / 1024 / 1024;
    return { read: megabytes / readSeconds, restore: megabytes / restoreSeconds, megabytes };
  } finally {
    await primary.close();
    await replica.close();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const rounds = Number(process.env.ROUNDS ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-db-repl-bench-"));
  const server = await testing.startPostgresServer();
  let database = 0;
  let node = 0;
  const sqlite = (changeCapture = true): ShardStoreOptions => ({ kind: "sqlite", dataDir: path.join(dir, `n${++node}`), nodeId: `n${node}`, changeCapture });
  const postgres = async (changeCapture = true): Promise<ShardStoreOptions> => ({
    kind: "postgres",
    url: await server.createDatabase(`bench_${++database}`),
    sslMode: "disable",
    maxConnections: 32,
    nodeId: `pg${database}`,
    changeCapture,
  });
  // Capture off and on alternate round by round (the machine's noise hits both alike); medians are printed.
  const results = new Map<string, { values: number[]; unit: string }>();
  const record = (name: string, value: number, unit: string) => {
    const entry = results.get(name) ?? { values: [], unit };
    entry.values.push(value);
    results.set(name, entry);
  };
  try {
    for (let round = 0; round < rounds; round += 1) {
      for (const [kind, sequential, concurrent] of [
        ["sqlite", 2000, 6400],
        ["postgres", 1000, 3200],
      ] as const) {
        for (const capture of [false, true]) {
          const options = kind === "sqlite" ? sqlite(capture) : await postgres(capture);
          const { one, many, store } = await writes(options, sequential, concurrent, 32);
          record(`${kind} autocommit, 1 caller, capture ${capture ? "on" : "off"}`, one, "writes/s");
          record(`${kind} autocommit, 32 callers, capture ${capture ? "on" : "off"}`, many, "writes/s");
          if (capture) {
            record(`${kind} applyChanges (single-row entries, batches of 500)`, await applyRate(store, kind === "sqlite" ? sqlite() : await postgres()), "entries/s");
          }
          await store.close();
        }
      }
    }
    const sqliteSnapshot = await snapshotRates(sqlite(), sqlite(), 100_000);
    const pgSnapshot = await snapshotRates(await postgres(), await postgres(), 100_000);
    record(`sqlite snapshot read (${sqliteSnapshot.megabytes.toFixed(1)} MB of values)`, sqliteSnapshot.read, "MB/s");
    record("sqlite snapshot restore", sqliteSnapshot.restore, "MB/s");
    record(`postgres snapshot read (${pgSnapshot.megabytes.toFixed(1)} MB of values)`, pgSnapshot.read, "MB/s");
    record("postgres snapshot restore", pgSnapshot.restore, "MB/s");
    for (const [name, { values, unit }] of [...results.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) line(name, median(values), unit);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
