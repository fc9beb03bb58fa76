// Decision-log group commit, measured on both backends: decisions/s when each decision is its own store
// transaction (batch 1) versus 32 per transaction, plus the DecisionBatcher fed by 64 concurrent callers.
//
//   node -r ./packages/db/test/support/register-ts.js packages/topology/bench/decision-log-bench.ts
//
// Starts its own PostgreSQL (fsync on) and uses a SQLite file (synchronous=FULL) in a temp dir.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { testing } from "@mycelium/db";
import { DecisionBatcher, openControlStore, type ControlStore, type DecisionInput } from "@mycelium/topology";

let sequence = 0;
function decision(): DecisionInput {
  sequence += 1;
  return {
    txId: `bench-${sequence}`,
    decision: "commit",
    participants: [
      { shardId: `s${sequence % 16}`, nodeId: "n1", epoch: 1 },
      { shardId: `s${(sequence + 1) % 16}`, nodeId: "n2", epoch: 1 },
    ],
    coordinatorId: "bench",
    atMs: Date.now(),
  };
}

async function batches(store: ControlStore, batchSize: number, total: number): Promise<number> {
  const start = performance.now();
  for (let written = 0; written < total; written += batchSize) {
    await store.decisions.recordDecisions(Array.from({ length: batchSize }, decision));
  }
  return total / ((performance.now() - start) / 1000);
}

async function batcher(store: ControlStore, callers: number, perCaller: number): Promise<{ rate: number; batches: number }> {
  const grouped = new DecisionBatcher(store.decisions, { maxBatch: 128 });
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (let index = 0; index < perCaller; index += 1) await grouped.record(decision());
    }),
  );
  return { rate: (callers * perCaller) / ((performance.now() - start) / 1000), batches: grouped.batches };
}

async function measure(name: string, url: string, options: Parameters<typeof openControlStore>[1]): Promise<void> {
  const store = await openControlStore(url, options);
  try {
    await batches(store, 1, 20); // warm up
    const one = await batches(store, 1, 300);
    const thirtyTwo = await batches(store, 32, 3200);
    const grouped = await batcher(store, 64, 50);
    console.log(
      `${name.padEnd(10)} batch 1: ${one.toFixed(0).padStart(7)} decisions/s   batch 32: ${thirtyTwo.toFixed(0).padStart(7)} decisions/s ` +
        `(x${(thirtyTwo / one).toFixed(1)})   batcher, 64 callers: ${grouped.rate.toFixed(0).padStart(7)} decisions/s in ${grouped.batches} batches`,
    );
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-bench-"));
  const server = await testing.startPostgresServer();
  try {
    await measure("sqlite", `sqlite:${path.join(dir, "control.db")}`, {});
    await measure("postgres", await server.createDatabase("bench"), { sslMode: "disable" });
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
