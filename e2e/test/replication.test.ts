/**
 * Replication (issue 6) with real processes: secondaries converge; a SIGKILLed primary is replaced
 * within the heartbeat timeout and no acknowledged write is lost (synchronous mode: present; asynchronous
 * mode: present or in the conflict journal); a SIGSTOPped primary writes nothing after its lease lapsed
 * and rejoins as a secondary; a forced split re-applies the divergent transactions that conflict with
 * nothing and journals the ones that do.
 *
 * Bound stated and checked: writes to a shard whose primary died resume within
 * MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT (3 s here) + 5 s (promotion, lease, routing).
 */
import { common, nodeagent, replicator, router } from "@mycelium/proto";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { eventually, TestCluster } from "@mycelium/testkit";
import type { MyceliumClient } from "@mycelium/client";

jest.setTimeout(300_000);

const heartbeatTimeoutMs = 3000;
const failoverBoundMs = heartbeatTimeoutMs + 5000;

let cluster: TestCluster;
let db: MyceliumClient;
let pool: ClientPool;

beforeAll(async () => {
  cluster = await TestCluster.start({ validators: 2, miners: 1 });
  db = cluster.client("admin", { deadlineMs: 20_000 });
  pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: cluster.cluster.layout.certificate("admin", "admin"), networkId: cluster.info.networkId, protocolVersion: "1.0.0" });
});

afterAll(async () => {
  pool?.close();
  await cluster?.stop();
});

const nodeName = (nodeId: string) => cluster.info.nodes.find((n) => n.nodeId === nodeId)!.name;
const agent = (nodeId: string) => pool.service(nodeagent.NodeAgentServiceService, cluster.nodeAddress(nodeName(nodeId)));

async function createTable(table: string, policy: Partial<common.TablePolicy>): Promise<void> {
  await db.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table, shardKeys: ["id"], initialShardCount: 4, ...policy }) }));
  await db.execute(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`);
}

async function shardsOf(table: string): Promise<common.ShardInfo[]> {
  return (await db.router.listShards(router.ListShardsRequest.create({ table }))).shards;
}

/** Every copy of every shard of `table` at the primary's position with the primary's checksum. */
async function converged(table: string): Promise<void> {
  for (const shard of await shardsOf(table)) {
    const primary = await agent(shard.primaryNodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: shard.shardId }));
    for (const nodeId of shard.replicaNodeIds.filter((id) => id !== shard.primaryNodeId)) {
      const copy = await agent(nodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: shard.shardId }));
      expect({ shard: shard.shardId, node: nodeId, lsn: copy.appliedLsn, checksum: copy.checksum }).toEqual({ shard: shard.shardId, node: nodeId, lsn: primary.appliedLsn, checksum: primary.checksum });
    }
  }
}

/** Ids whose rows live on one shard. */
async function idsOnShard(table: string, shardId: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let id = 1; ids.length < count && id < 10_000; id++) {
    if ((await db.explain(`SELECT * FROM ${table} WHERE id = ?`, [id])).targets[0]!.shard!.shardId === shardId) ids.push(id);
  }
  return ids;
}

/** Ids whose rows live on shards whose primary is `nodeId`. */
async function idsOnPrimary(table: string, nodeId: string, count: number, from = 1): Promise<number[]> {
  const ids: number[] = [];
  for (let id = from; ids.length < count && id < from + 10_000; id++) {
    if ((await db.explain(`SELECT * FROM ${table} WHERE id = ?`, [id])).targets[0]!.primaryNodeId === nodeId) ids.push(id);
  }
  return ids;
}

test("secondaries converge on the primary's rows and checksum after a write load", async () => {
  await createTable("converge", { replicationFactor: 1 });
  for (let batch = 0; batch < 10; batch++) {
    const ids = Array.from({ length: 20 }, (_, i) => batch * 20 + i + 1);
    await db.execute(`INSERT INTO converge (id, v) VALUES ${ids.map(() => "(?, ?)").join(", ")}`, ids.flatMap((id) => [id, `v${id}`]));
  }
  for (let id = 1; id <= 200; id += 3) await db.execute("UPDATE converge SET v = ? WHERE id = ?", [`u${id}`, id]);
  for (let id = 2; id <= 200; id += 7) await db.execute("DELETE FROM converge WHERE id = ?", [id]);
  await eventually(() => converged("converge"), { timeoutMs: 15_000, intervalMs: 250 });
  // A full scan agrees with the incrementally kept checksum on every copy.
  for (const shard of await shardsOf("converge")) {
    for (const nodeId of shard.replicaNodeIds) {
      const verified = await agent(nodeId).verifyChecksum(nodeagent.VerifyChecksumRequest.create({ shardId: shard.shardId }));
      expect(verified.ok).toBe(true);
    }
  }
});

/**
 * Writers insert unique ids while a primary is SIGKILLed; returns the acknowledged ids and how long
 * writes to that primary's shards were refused.
 */
async function setTestWithPrimaryKill(table: string, victim: string, restartAfterMs: number | null): Promise<{ acked: Set<number>; outageMs: number }> {
  const acked = new Set<number>();
  let next = 1_000_000;
  let stop = false;
  const writers = Array.from({ length: 4 }, async () => {
    const client = cluster.client("client", { deadlineMs: 15_000 });
    while (!stop) {
      const id = next++;
      try {
        await client.execute(`INSERT INTO ${table} (id, v) VALUES (?, 'set')`, [id]);
        acked.add(id);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const probeIds = await idsOnPrimary(table, victim, 1, 5_000_000);
  const killedAt = Date.now();
  await cluster.kill(nodeName(victim), "SIGKILL");
  // Writes to a shard the victim led resume once another copy is promoted.
  const outageMs = await eventually(async () => {
    await db.execute(`INSERT INTO ${table} (id, v) VALUES (?, 'probe') ON CONFLICT (id) DO NOTHING`, [probeIds[0]!]);
    return Date.now() - killedAt;
  }, { timeoutMs: failoverBoundMs + 10_000, intervalMs: 100 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  if (restartAfterMs !== null) {
    await new Promise((resolve) => setTimeout(resolve, restartAfterMs));
    await cluster.restart(nodeName(victim));
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  stop = true;
  await Promise.all(writers);
  return { acked, outageMs };
}

test("synchronous mode: SIGKILL of a primary under load loses no acknowledged insert; writes resume within the bound", async () => {
  await createTable("set_sync", { replicationFactor: 1, replicationSync: common.ReplicationSync.REPLICATION_SYNC_SYNC, syncReplicas: 1 });
  const [shard] = await shardsOf("set_sync");
  const victim = shard!.primaryNodeId;
  const { acked, outageMs } = await setTestWithPrimaryKill("set_sync", victim, null);
  process.stdout.write(`sync: ${acked.size} inserts acknowledged; writes to the dead primary's shards resumed after ${outageMs} ms\n`);
  expect(acked.size).toBeGreaterThan(50);
  expect(outageMs).toBeLessThan(failoverBoundMs);
  // The victim stays dead: everything acknowledged must be on the survivors.
  const present = new Set((await db.execute("SELECT id FROM set_sync")).rows.map((r) => r[0] as number));
  expect([...acked].filter((id) => !present.has(id))).toEqual([]);
  await cluster.restart(nodeName(victim));
  await eventually(() => converged("set_sync"), { timeoutMs: 30_000, intervalMs: 500 });
});

test("asynchronous mode: every acknowledged insert is present or in the conflict journal after the old primary returns", async () => {
  await createTable("set_async", { replicationFactor: 0.5 });
  const [shard] = await shardsOf("set_async");
  const victim = shard!.primaryNodeId;
  const { acked, outageMs } = await setTestWithPrimaryKill("set_async", victim, 1000);
  process.stdout.write(`async: ${acked.size} inserts acknowledged; writes resumed after ${outageMs} ms\n`);
  expect(outageMs).toBeLessThan(failoverBoundMs);
  await eventually(() => converged("set_async"), { timeoutMs: 30_000, intervalMs: 500 });
  const present = new Set((await db.execute("SELECT id FROM set_async")).rows.map((r) => r[0] as number));
  const journaled = new Set<number>();
  const { conflicts } = await pool.service(replicator.ReplicatorServiceService, cluster.address("replicator")).listConflicts(replicator.ListConflictsRequest.create({}));
  for (const conflict of conflicts) for (const match of conflict.entry.matchAll(/"id":(\d+)/g)) journaled.add(Number(match[1]));
  expect([...acked].filter((id) => !present.has(id) && !journaled.has(id))).toEqual([]);
});

test("a SIGSTOPped primary writes nothing after its lease lapsed, then rejoins as a secondary and converges", async () => {
  await createTable("paused", { replicationFactor: 1 });
  const [shard] = await shardsOf("paused");
  const old = shard!.primaryNodeId;
  const [id] = await idsOnShard("paused", shard!.shardId, 1);
  await db.execute("INSERT INTO paused (id, v) VALUES (?, 'before')", [id!]);
  // Asynchronous shipping: wait until the copies hold the table and the row, so what is tested is the
  // lease, not the loss of an unshipped tail (the asynchronous set test covers that).
  await eventually(() => converged("paused"), { timeoutMs: 15_000, intervalMs: 250 });
  await cluster.kill(nodeName(old), "SIGSTOP");
  try {
    // Someone else is promoted once the lease has lapsed.
    await eventually(async () => {
      const [now] = (await shardsOf("paused")).filter((s) => s.shardId === shard!.shardId);
      expect(now!.primaryNodeId).not.toBe(old);
    }, { timeoutMs: failoverBoundMs, intervalMs: 200 });
    // Writes resume once the new primary has reported in (idempotent, so retrying is safe).
    await eventually(() => db.execute("UPDATE paused SET v = 'after' WHERE id = ?", [id!]), { timeoutMs: failoverBoundMs, intervalMs: 200 });
  } finally {
    await cluster.kill(nodeName(old), "SIGCONT");
  }
  // The old primary, under its old epoch, refuses the write it would have taken before.
  await expect(
    agent(old).execute(nodeagent.ExecuteRequest.create({
      shard: { shardId: shard!.shardId, epoch: shard!.epoch },
      statements: [{ sql: "UPDATE paused SET v = 'split-brain' WHERE id = 1", params: [] }],
      mode: nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT,
    })),
  ).rejects.toMatchObject({ code: expect.stringMatching(/FAILED_PRECONDITION|UNAVAILABLE|PERMISSION_DENIED/) });
  await eventually(() => converged("paused"), { timeoutMs: 30_000, intervalMs: 500 });
  expect((await db.execute("SELECT v FROM paused WHERE id = ?", [id!])).rows).toEqual([["after"]]);
});

test("a forced split: the divergent transaction that touches nothing changed since is re-applied, the conflicting one journaled", async () => {
  await createTable("split", { replicationFactor: 1 });
  const [shard] = await shardsOf("split");
  const old = shard!.primaryNodeId;
  const [conflicting, fresh, untouched] = await idsOnShard("split", shard!.shardId, 3);
  await db.execute("INSERT INTO split (id, v) VALUES (?, 'start'), (?, 'start')", [conflicting!, untouched!]);
  await eventually(() => converged("split"), { timeoutMs: 15_000, intervalMs: 250 });
  // Arm the partition switch on the primary (a restart; it keeps its role and takes a new lease).
  await cluster.kill(nodeName(old), "SIGTERM");
  await cluster.restart(nodeName(old), { MYCELIUM_FAULT_POINTS: "node.isolate-on-sigusr2" });
  await eventually(() => db.execute("UPDATE split SET v = 'start' WHERE id = ?", [conflicting!]), { timeoutMs: failoverBoundMs, intervalMs: 200 });
  await eventually(() => converged("split"), { timeoutMs: 15_000, intervalMs: 250 });

  // Cut it off from the replicator: it keeps taking writes until its lease lapses, and ships none.
  cluster.process(nodeName(old)).child.kill("SIGUSR2");
  await db.execute("UPDATE split SET v = 'old side' WHERE id = ?", [conflicting!]);
  await db.execute("INSERT INTO split (id, v) VALUES (?, 'old side only')", [fresh!]);
  // A new primary is promoted; the same row changes there too.
  await eventually(async () => {
    const [now] = (await shardsOf("split")).filter((s) => s.shardId === shard!.shardId);
    expect(now!.primaryNodeId).not.toBe(old);
  }, { timeoutMs: failoverBoundMs, intervalMs: 200 });
  await eventually(() => db.execute("UPDATE split SET v = 'new side' WHERE id = ?", [conflicting!]), { timeoutMs: failoverBoundMs, intervalMs: 200 });

  // The old primary comes back: reconciled, then a secondary like the others.
  cluster.process(nodeName(old)).child.kill("SIGUSR2");
  const replicatorClient = pool.service(replicator.ReplicatorServiceService, cluster.address("replicator"));
  const journaled = await eventually(async () => {
    const { conflicts } = await replicatorClient.listConflicts(replicator.ListConflictsRequest.create({ status: replicator.ConflictStatus.CONFLICT_STATUS_PENDING }));
    const mine = conflicts.filter((c) => c.shardId === shard!.shardId);
    expect(mine).toHaveLength(1);
    return mine[0]!;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  expect(journaled.entry).toContain("old side");
  expect(journaled.reasons.join(" ")).toContain("also changed on the current primary");
  await eventually(async () => {
    expect((await db.execute("SELECT v FROM split WHERE id = ?", [fresh!])).rows).toEqual([["old side only"]]);
    expect((await db.execute("SELECT v FROM split WHERE id = ?", [conflicting!])).rows).toEqual([["new side"]]);
    expect((await db.execute("SELECT v FROM split WHERE id = ?", [untouched!])).rows).toEqual([["start"]]);
  }, { timeoutMs: 15_000, intervalMs: 250 });
  await eventually(() => converged("split"), { timeoutMs: 30_000, intervalMs: 500 });

  // An operator applies the journaled transaction after all.
  const resolved = await replicatorClient.resolveConflict(replicator.ResolveConflictRequest.create({ conflictId: journaled.conflictId, resolution: replicator.ConflictStatus.CONFLICT_STATUS_APPLIED }));
  expect(resolved.conflict!.status).toBe(replicator.ConflictStatus.CONFLICT_STATUS_APPLIED);
  expect((await db.execute("SELECT v FROM split WHERE id = ?", [conflicting!])).rows).toEqual([["old side"]]);
});
