/**
 * Replication cost and lag through a real local cluster (separate processes, mutual TLS on loopback,
 * SQLite shards with synchronous=FULL), in one run:
 *  - primary write throughput (one-row INSERTs, 16 in flight) on a one-shard table with no secondaries,
 *    beside the same on a one-shard table with two asynchronous secondaries; rounds alternate so a
 *    shared machine's drift hits both alike, and the medians are printed;
 *  - replication lag at half the measured replicated throughput (an open-loop writer at a fixed rate):
 *    every SAMPLE_MS the primary's and each secondary's applied LSN are read; lag in LSNs is the
 *    difference, lag in ms is how long ago the primary first showed the position the secondary has not
 *    reached yet (resolution: one sampling interval).
 *
 * Usage: node bench/dist/replication.js [seconds-per-round=5] [rounds=3] [lag-load=0.5]
 * (lag-load: the fraction of the measured replicated throughput offered while lag is sampled)
 */
import { performance } from "node:perf_hooks";
import { common, nodeagent, router } from "@mycelium/proto";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";
import { formatRow, header, measure, productionHeartbeats, summarise, type Summary } from "./stats";

const sampleMs = 10;

interface Table {
  name: string;
  shardId: string;
  primary: string;
  secondaries: string[];
}

async function createTable(db: MyceliumClient, name: string, replicationFactor: number): Promise<Table> {
  await db.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: name, shardKeys: ["id"], initialShardCount: 1, replicationFactor, minValidatorCopies: 1 }) }));
  await db.execute(`CREATE TABLE ${name} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`);
  const [shard] = (await db.router.listShards(router.ListShardsRequest.create({ table: name }))).shards;
  return { name, shardId: shard!.shardId, primary: shard!.primaryNodeId, secondaries: shard!.replicaNodeIds.filter((id) => id !== shard!.primaryNodeId) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 3);
  const lagLoad = Number(process.argv[4] ?? 0.5);
  const started = Date.now();
  const cluster = await TestCluster.start({ validators: 2, miners: 1, logLevel: "warn", env: { ...productionHeartbeats, MYCELIUM_LOG_LEVEL: "warn" } });
  const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: cluster.cluster.layout.certificate("admin", "admin"), networkId: cluster.info.networkId, protocolVersion: "1.0.0" });
  try {
    const db = cluster.client("admin", { deadlineMs: 30_000 });
    const alone = await createTable(db, "solo", 0.1);
    const replicated = await createTable(db, "followed", 1);
    if (alone.secondaries.length !== 0 || replicated.secondaries.length !== 2) {
      throw new Error(`expected 0 and 2 secondaries, got ${alone.secondaries.length} and ${replicated.secondaries.length}`);
    }
    let nextId = 1;
    const insert = (table: string) => () => db.execute(`INSERT INTO ${table} (id, v) VALUES (?, ?)`, [nextId++, "x".repeat(64)]);
    const count = async (table: string) => {
      await measure(100, 16, insert(table)); // warm-up
      const probe = await measure(300, 16, insert(table));
      return Math.max(300, Math.round(probe.throughputPerSecond * seconds));
    };
    const counts = { solo: await count("solo"), followed: await count("followed") };
    const solo: Summary[] = [];
    const followed: Summary[] = [];
    for (let round = 0; round < rounds; round++) {
      solo.push(await measure(counts.solo, 16, insert("solo")));
      followed.push(await measure(counts.followed, 16, insert("followed")));
    }
    const pick = (runs: Summary[]) => runs.find((s) => s.throughputPerSecond === median(runs.map((r) => r.throughputPerSecond)))!;

    // Lag at a fraction (half by default) of the replicated throughput.
    const rate = pick(followed).throughputPerSecond * lagLoad;
    const node = (nodeId: string) => pool.service(nodeagent.NodeAgentServiceService, cluster.nodeAddress(cluster.info.nodes.find((n) => n.nodeId === nodeId)!.name));
    const lsnOf = async (nodeId: string) => (await node(nodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: replicated.shardId }), { deadlineMs: 2000 })).appliedLsn;
    const primaryHistory: Array<{ atMs: number; lsn: number }> = [];
    const lagLsn: number[] = [];
    const lagMs: number[] = [];
    let writing = true;
    const writeLatencies: number[] = [];
    const writer = (async () => {
      const begin = performance.now();
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; writing; i++) {
        const due = begin + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (inFlight.size >= 64) await Promise.race(inFlight); // bounded: a stall shows as lost rate, not memory
        const t0 = performance.now();
        const op: Promise<void> = insert("followed")().then(() => {
          writeLatencies.push(performance.now() - t0);
          inFlight.delete(op);
        });
        inFlight.add(op);
      }
      await Promise.all(inFlight);
      return performance.now() - begin;
    })();
    const sampleUntil = performance.now() + seconds * 1000;
    while (performance.now() < sampleUntil) {
      const tick = performance.now();
      const [primaryLsn, ...secondaryLsns] = await Promise.all([lsnOf(replicated.primary), ...replicated.secondaries.map(lsnOf)]);
      primaryHistory.push({ atMs: tick, lsn: primaryLsn! });
      for (const lsn of secondaryLsns) {
        lagLsn.push(Math.max(0, primaryLsn! - lsn));
        // The first sample at which the primary held an entry this copy lacks.
        const ahead = primaryHistory.find((sample) => sample.lsn > lsn);
        lagMs.push(ahead ? tick - ahead.atMs : 0);
      }
      const rest = sampleMs - (performance.now() - tick);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
    writing = false;
    const writtenMs = await writer;
    const halfLoad = summarise(writeLatencies, writtenMs);
    const lagSummary = summarise(lagMs, 1);
    const lsnSummary = summarise(lagLsn, 1);

    console.log(`\nMycelium replication benchmark on sqlite nodes (${new Date().toISOString()}, ${rounds} rounds × ${seconds} s, node ${process.version})`);
    console.log(header);
    solo.forEach((s, i) => console.log(formatRow(`no secondaries, INSERT 16 in flight, round ${i + 1}`, s)));
    followed.forEach((s, i) => console.log(formatRow(`2 async secondaries, INSERT 16 in flight, round ${i + 1}`, s)));
    console.log(formatRow("median: no secondaries", pick(solo)));
    console.log(formatRow("median: 2 async secondaries", pick(followed)));
    console.log(formatRow(`${lagLoad} load (${rate.toFixed(0)}/s offered), 2 async secondaries`, halfLoad));
    console.log(`\nreplication lag at ${lagLoad} load, ${lagMs.length} samples (every ${sampleMs} ms, both secondaries):`);
    console.log(`  lag in time:  p50 ${lagSummary.p50Ms.toFixed(0)} ms   p99 ${lagSummary.p99Ms.toFixed(0)} ms   (resolution ${sampleMs} ms)`);
    console.log(`  lag in LSNs:  p50 ${lsnSummary.p50Ms.toFixed(0)}      p99 ${lsnSummary.p99Ms.toFixed(0)}`);
    console.log("\nratio:");
    console.log(`  throughput with 2 async secondaries / with none: ${(pick(followed).throughputPerSecond / pick(solo).throughputPerSecond).toFixed(2)}`);
    console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    pool.close();
    await cluster.stop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
