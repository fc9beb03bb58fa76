import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { testing } from "@mycelium/db";
import { common } from "@mycelium/proto";
import {
  DecisionBatcher,
  GrantStore,
  NodeRegistry,
  openControlStore,
  PolicyStore,
  SchemaStore,
  ShardMap,
  TopologyError,
  type ControlStore,
  type ControlStoreOptions,
  type DecisionInput,
} from "@mycelium/topology";

// One behaviour suite, every backend: the same test body runs once per row of this table.

let server: testing.PostgresServer;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-control-"));
let counter = 0;

beforeAll(async () => {
  server = await testing.startPostgresServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

interface Backend {
  name: "sqlite" | "postgres";
  freshUrl(): Promise<string>;
  options: ControlStoreOptions;
}

const backends: Backend[] = [
  { name: "sqlite", freshUrl: async () => `sqlite:${path.join(root, `control-${++counter}.db`)}`, options: {} },
  { name: "postgres", freshUrl: () => server.createDatabase(`control_${++counter}`), options: { sslMode: "disable" } },
];

const text = (value: unknown) => (typeof value === "string" ? value : Buffer.from(value as Uint8Array).toString("utf8"));

async function eventually<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const result = await attempt();
    if (result !== undefined) return result;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.each(backends)("control store on $name", (backend) => {
  const stores: ControlStore[] = [];
  let url: string;

  async function open(): Promise<ControlStore> {
    const store = await openControlStore(url, backend.options);
    stores.push(store);
    return store;
  }

  beforeEach(async () => {
    url = await backend.freshUrl();
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  describe("key-value with compare-and-set", () => {
    test("put, get and list by prefix; strings stay strings and bytes stay bytes", async () => {
      const store = await open();
      expect(store.kind).toBe(backend.name);
      expect(await store.get("a/1")).toBeNull();
      const result = await store.commit([
        { kind: "put", key: "a/1", value: "one" },
        { kind: "put", key: "a/2", value: new Uint8Array([0, 255, 7]) },
        { kind: "put", key: "a/é", value: "accent" },
        { kind: "put", key: "a0", value: "after the prefix" },
        { kind: "put", key: "b/1", value: "other" },
      ]);
      expect(result.ok).toBe(true);
      const entry = await store.get("a/1");
      expect(entry).toEqual({ key: "a/1", value: "one", version: expect.any(Number) });
      const bytes = await store.get("a/2");
      expect(bytes!.value).toBeInstanceOf(Uint8Array);
      expect(Array.from(bytes!.value as Uint8Array)).toEqual([0, 255, 7]);
      expect((await store.list("a/")).map((item) => item.key)).toEqual(["a/1", "a/2", "a/é"]);
      expect((await store.list("")).length).toBe(5);
      expect((await store.list("a/", 2)).map((item) => item.key)).toEqual(["a/1", "a/2"]);
      expect(await store.list("zzz")).toEqual([]);
    });

    test("create-if-absent: expectedVersion 0 succeeds once", async () => {
      const store = await open();
      const first = await store.commit([{ kind: "put", key: "k", value: "v1", expectedVersion: 0 }]);
      expect(first.ok).toBe(true);
      const version = first.ok ? first.versions["k"]! : -1;
      expect(await store.commit([{ kind: "put", key: "k", value: "v2", expectedVersion: 0 }])).toEqual({
        ok: false,
        conflictKey: "k",
        actualVersion: version,
      });
      expect((await store.get("k"))!.value).toBe("v1");
    });

    test("a stale version is rejected; the current one is accepted", async () => {
      const store = await open();
      const created = await store.commit([{ kind: "put", key: "k", value: "v1" }]);
      const v1 = created.ok ? created.versions["k"]! : -1;
      const updated = await store.commit([{ kind: "put", key: "k", value: "v2", expectedVersion: v1 }]);
      expect(updated.ok).toBe(true);
      const v2 = updated.ok ? updated.versions["k"]! : -1;
      expect(v2).toBeGreaterThan(v1);
      expect(await store.commit([{ kind: "put", key: "k", value: "v3", expectedVersion: v1 }])).toEqual({
        ok: false,
        conflictKey: "k",
        actualVersion: v2,
      });
      expect(await store.commit([{ kind: "delete", key: "k", expectedVersion: v1 }])).toMatchObject({ ok: false });
      expect((await store.commit([{ kind: "delete", key: "k", expectedVersion: v2 }])).ok).toBe(true);
      expect(await store.get("k")).toBeNull();
      // A missing key has version 0.
      expect(await store.commit([{ kind: "check", key: "k", expectedVersion: 5 }])).toEqual({ ok: false, conflictKey: "k", actualVersion: 0 });
    });

    test("multi-key atomicity: one failed condition writes nothing", async () => {
      const store = await open();
      const setup = await store.commit([{ kind: "put", key: "guard", value: "g" }, { kind: "put", key: "keep", value: "old" }]);
      const guard = setup.ok ? setup.versions["guard"]! : -1;
      const revision = await store.revision();
      const failed = await store.commit([
        { kind: "put", key: "new", value: "n" },
        { kind: "put", key: "keep", value: "new" },
        { kind: "delete", key: "other" },
        { kind: "check", key: "guard", expectedVersion: guard + 100 },
      ]);
      expect(failed).toEqual({ ok: false, conflictKey: "guard", actualVersion: guard });
      expect(await store.get("new")).toBeNull();
      expect((await store.get("keep"))!.value).toBe("old");
      expect(await store.revision()).toBe(revision);
      const passed = await store.commit([
        { kind: "put", key: "new", value: "n" },
        { kind: "delete", key: "keep" },
        { kind: "check", key: "guard", expectedVersion: guard },
      ]);
      expect(passed.ok).toBe(true);
      expect(passed.ok && passed.versions).toEqual({ new: passed.ok ? passed.revision : -1 });
      expect(await store.get("keep")).toBeNull();
    });

    test("versions are never reused, even across delete and re-create", async () => {
      const store = await open();
      const first = await store.commit([{ kind: "put", key: "k", value: "a" }]);
      await store.commit([{ kind: "delete", key: "k" }]);
      const second = await store.commit([{ kind: "put", key: "k", value: "b", expectedVersion: 0 }]);
      expect(first.ok && second.ok).toBe(true);
      expect(second.ok && first.ok && second.versions["k"]! > first.versions["k"]!).toBe(true);
    });

    test("the revision increases with every write and only with writes", async () => {
      const store = await open();
      const seen = [await store.revision()];
      for (let index = 0; index < 5; index += 1) {
        await store.commit([{ kind: "put", key: `k${index}`, value: "v" }]);
        seen.push(await store.revision());
      }
      for (let index = 1; index < seen.length; index += 1) expect(seen[index]).toBeGreaterThan(seen[index - 1]!);
      const before = await store.revision();
      await store.commit([{ kind: "check", key: "k0", expectedVersion: 0 }]);
      await store.commit([{ kind: "check", key: "k0", expectedVersion: (await store.get("k0"))!.version }]);
      await store.acquireLease("l", "a", 10_000);
      expect(await store.revision()).toBe(before);
    });

    test("bad requests are refused with INVALID_ARGUMENT", async () => {
      const store = await open();
      await expect(store.commit([])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.commit([{ kind: "put", key: "", value: "x" }])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(
        store.commit([
          { kind: "put", key: "dup", value: "x" },
          { kind: "delete", key: "dup" },
        ]),
      ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(store.commit([{ kind: "put", key: "k", value: "x", expectedVersion: -1 }])).rejects.toBeInstanceOf(TopologyError);
    });

    test("two store instances racing on one counter: exactly one winner per round, no lost update", async () => {
      const a = await open();
      const b = await open();
      await a.commit([{ kind: "put", key: "counter", value: "0" }]);
      const rounds = 25;
      for (let round = 0; round < rounds; round += 1) {
        const [seenA, seenB] = await Promise.all([a.get("counter"), b.get("counter")]);
        expect(seenA!.version).toBe(seenB!.version);
        const next = String(Number(seenA!.value) + 1);
        const results = await Promise.all([
          a.commit([{ kind: "put", key: "counter", value: next, expectedVersion: seenA!.version }]),
          b.commit([{ kind: "put", key: "counter", value: next, expectedVersion: seenB!.version }]),
        ]);
        expect(results.filter((result) => result.ok)).toHaveLength(1);
      }
      expect((await a.get("counter"))!.value).toBe(String(rounds));

      // Free-running read-modify-write loops from both instances: every increment lands exactly once.
      const increments = async (store: ControlStore, count: number) => {
        for (let done = 0; done < count; ) {
          const current = (await store.get("counter"))!;
          const result = await store.commit([{ kind: "put", key: "counter", value: String(Number(current.value) + 1), expectedVersion: current.version }]);
          if (result.ok) done += 1;
        }
      };
      await Promise.all([increments(a, 30), increments(b, 30)]);
      expect((await b.get("counter"))!.value).toBe(String(rounds + 60));
    });
  });

  describe("leases", () => {
    test("exclusive until released; renewal keeps the holder and the token", async () => {
      const a = await open();
      const b = await open();
      const taken = await a.acquireLease("replicator/shard-1", "A", 60_000);
      expect(taken).toMatchObject({ acquired: true, holder: "A", token: 1 });
      expect(await b.acquireLease("replicator/shard-1", "B", 60_000)).toMatchObject({ acquired: false, holder: "A", token: 1 });
      const renewed = await a.acquireLease("replicator/shard-1", "A", 120_000);
      expect(renewed).toMatchObject({ acquired: true, holder: "A", token: 1 });
      expect(renewed.expiresAtMs).toBeGreaterThan(taken.expiresAtMs);
      expect(await b.getLease("replicator/shard-1")).toEqual({ holder: "A", expiresAtMs: renewed.expiresAtMs, token: 1 });
      await b.releaseLease("replicator/shard-1", "B"); // not the holder: no effect
      expect(await b.acquireLease("replicator/shard-1", "B", 60_000)).toMatchObject({ acquired: false, holder: "A" });
      await a.releaseLease("replicator/shard-1", "A");
      expect(await b.getLease("replicator/shard-1")).toBeNull();
      // A new holder gets a higher fencing token.
      expect(await b.acquireLease("replicator/shard-1", "B", 60_000)).toMatchObject({ acquired: true, holder: "B", token: 2 });
    });

    test("an expired lease can be taken by another holder", async () => {
      const a = await open();
      const b = await open();
      await a.acquireLease("coordinator/recovery", "A", 1);
      const taken = await eventually(async () => {
        const attempt = await b.acquireLease("coordinator/recovery", "B", 60_000);
        return attempt.acquired ? attempt : undefined;
      });
      expect(taken).toMatchObject({ holder: "B", token: 2 });
      expect(await a.acquireLease("coordinator/recovery", "A", 60_000)).toMatchObject({ acquired: false, holder: "B" });
    });

    test("racing acquirers: exactly one holder", async () => {
      const stores = [await open(), await open()];
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, index) => stores[index % 2]!.acquireLease("race", `holder-${index}`, 60_000)),
      );
      const winners = results.filter((result) => result.acquired);
      expect(winners).toHaveLength(1);
      for (const result of results) expect(result.holder).toBe(winners[0]!.holder);
    });
  });

  describe("decision log", () => {
    const decision = (txId: string, kind: "commit" | "abort", shards: string[], atMs = 1_000): DecisionInput => ({
      txId,
      decision: kind,
      participants: shards.map((shardId, index) => ({ shardId, nodeId: `node-${index}`, epoch: 3 })),
      coordinatorId: "coord-1",
      atMs,
    });

    test("a batch is recorded and read back with its participants", async () => {
      const store = await open();
      const results = await store.decisions.recordDecisions([
        decision("tx-1", "commit", ["s1", "s2"]),
        decision("tx-2", "commit", ["s2", "s3"], 2_000),
        decision("tx-3", "abort", ["s1"], 3_000),
      ]);
      expect(results).toEqual([
        { txId: "tx-1", ok: true },
        { txId: "tx-2", ok: true },
        { txId: "tx-3", ok: true },
      ]);
      expect(await store.decisions.getDecision("tx-1")).toEqual({
        txId: "tx-1",
        decision: "commit",
        coordinatorId: "coord-1",
        decidedAtMs: 1_000,
        completedAtMs: null,
        participants: [
          { shardId: "s1", nodeId: "node-0", epoch: 3, done: false },
          { shardId: "s2", nodeId: "node-1", epoch: 3, done: false },
        ],
      });
      expect(await store.decisions.getDecision("tx-unknown")).toBeNull();
    });

    test("a decision never changes: the opposite decision is refused, the same one is idempotent", async () => {
      const store = await open();
      await store.decisions.recordDecisions([decision("tx-c", "commit", ["s1"]), decision("tx-a", "abort", ["s1"])]);
      expect(
        await store.decisions.recordDecisions([
          decision("tx-c", "abort", ["s9"]),
          decision("tx-a", "commit", ["s9"]),
          decision("tx-c", "commit", ["s9"]),
          decision("tx-new", "commit", ["s1"]),
          decision("tx-new", "abort", ["s1"]),
        ]),
      ).toEqual([
        { txId: "tx-c", ok: false, existing: "commit" },
        { txId: "tx-a", ok: false, existing: "abort" },
        { txId: "tx-c", ok: true },
        { txId: "tx-new", ok: true },
        { txId: "tx-new", ok: false, existing: "commit" },
      ]);
      const stored = await store.decisions.getDecision("tx-c");
      expect(stored!.decision).toBe("commit");
      expect(stored!.participants.map((participant) => participant.shardId)).toEqual(["s1"]);
    });

    test("batch atomicity: a batch that fails in the middle leaves nothing behind", async () => {
      const store = await open();
      // The third decision names one shard twice; the participants' primary key refuses it mid-batch.
      await expect(
        store.decisions.recordDecisions([
          decision("tx-b1", "commit", ["s1"]),
          decision("tx-b2", "commit", ["s2"]),
          decision("tx-b3", "commit", ["s3", "s3"]),
        ]),
      ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      for (const txId of ["tx-b1", "tx-b2", "tx-b3"]) expect(await store.decisions.getDecision(txId)).toBeNull();
      await expect(store.decisions.recordDecisions([{ ...decision("tx-b4", "commit", ["s1"]), decision: "maybe" as never }])).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    });

    test("two coordinators deciding the same transactions concurrently: one decision stands for each", async () => {
      const a = await open();
      const b = await open();
      const txIds = Array.from({ length: 40 }, (_, index) => `race-${index}`);
      const [fromA, fromB] = await Promise.all([
        a.decisions.recordDecisions(txIds.map((txId) => decision(txId, "commit", ["s1"]))),
        b.decisions.recordDecisions([...txIds].reverse().map((txId) => decision(txId, "abort", ["s1"]))),
      ]);
      for (const txId of txIds) {
        const stored = (await a.decisions.getDecision(txId))!.decision;
        const resultA = fromA.find((result) => result.txId === txId)!;
        const resultB = fromB.find((result) => result.txId === txId)!;
        // Exactly one of the two callers was told its decision stands, and that is the stored one.
        expect([resultA.ok, resultB.ok].filter(Boolean)).toHaveLength(1);
        expect(resultA.ok ? "commit" : "abort").toBe(stored);
      }
    });

    test("listUndone, markParticipantDone and pruneCompleted", async () => {
      const store = await open();
      await store.decisions.recordDecisions([
        decision("tx-1", "commit", ["s1", "s2"], 1_000),
        decision("tx-2", "commit", ["s3"], 2_000),
        decision("tx-3", "abort", [], 3_000),
      ]);
      // An abort with no participants is complete at once.
      expect((await store.decisions.getDecision("tx-3"))!.completedAtMs).toBe(3_000);
      expect((await store.decisions.listUndone()).map((record) => record.txId)).toEqual(["tx-1", "tx-2"]);
      expect((await store.decisions.listUndone(1)).map((record) => record.txId)).toEqual(["tx-1"]);

      await store.decisions.markParticipantDone("tx-1", "s1", 5_000);
      await store.decisions.markParticipantDone("tx-1", "s1", 5_500); // repeated acknowledgement
      const partial = await store.decisions.getDecision("tx-1");
      expect(partial!.completedAtMs).toBeNull();
      expect(partial!.participants.map((participant) => participant.done)).toEqual([true, false]);
      await store.decisions.markParticipantsDone(
        [
          { txId: "tx-1", shardId: "s2" },
          { txId: "tx-2", shardId: "s3" },
        ],
        6_000,
      );
      expect((await store.decisions.getDecision("tx-1"))!.completedAtMs).toBe(6_000);
      expect(await store.decisions.listUndone()).toEqual([]);

      expect(await store.decisions.pruneCompleted(4_000)).toBe(1); // tx-3
      expect(await store.decisions.getDecision("tx-3")).toBeNull();
      expect(await store.decisions.pruneCompleted(10_000)).toBe(2);
      expect(await store.decisions.getDecision("tx-1")).toBeNull();
    });

    test("concurrent acknowledgements of one transaction from two instances complete it", async () => {
      const a = await open();
      const b = await open();
      const shards = Array.from({ length: 10 }, (_, index) => `s${index}`);
      await a.decisions.recordDecisions([decision("tx-acks", "commit", shards)]);
      await Promise.all(shards.map((shardId, index) => (index % 2 === 0 ? a : b).decisions.markParticipantDone("tx-acks", shardId, 7_000)));
      expect((await a.decisions.getDecision("tx-acks"))!.completedAtMs).toBe(7_000);
    });

    test("the batcher groups concurrent decisions into few store transactions", async () => {
      const store = await open();
      const batcher = new DecisionBatcher(store.decisions, { maxBatch: 16 });
      const results = await Promise.all(Array.from({ length: 64 }, (_, index) => batcher.record(decision(`tx-g${index}`, "commit", ["s1"]))));
      expect(results.every((result) => result.ok)).toBe(true);
      expect(batcher.batches).toBeLessThan(64);
      expect(batcher.batches).toBeGreaterThanOrEqual(4);
      expect((await store.decisions.listUndone(1000)).length).toBe(64);
    });
  });

  describe("typed repositories", () => {
    test("NodeRegistry stores common.NodeInfo and records heartbeats", async () => {
      const store = await open();
      const nodes = new NodeRegistry(store);
      const node = common.NodeInfo.fromPartial({
        nodeId: "n1",
        nodeType: common.NodeType.NODE_TYPE_VALIDATOR,
        address: "127.0.0.1:7001",
        publicKey: "ab".repeat(32),
        validatorWeight: 1.5,
        status: common.NodeStatus.NODE_STATUS_UP,
        registeredAtMs: 1_700_000_000_000,
        storedBytes: 2 ** 40,
      });
      expect((await nodes.register(node, 0)).ok).toBe(true);
      expect((await nodes.register(node, 0)).ok).toBe(false);
      expect((await nodes.get("n1"))!.value).toEqual(node);
      const beat = await nodes.heartbeat("n1", { atMs: 1_700_000_005_000, storedBytes: 123 });
      expect(beat!.value).toMatchObject({ lastHeartbeatAtMs: 1_700_000_005_000, storedBytes: 123, address: "127.0.0.1:7001" });
      expect(await nodes.heartbeat("ghost", { atMs: 1 })).toBeNull();
      expect((await nodes.list()).map((found) => found.id)).toEqual(["n1"]);
    });

    test("PolicyStore stores common.TablePolicy with its control-store version", async () => {
      const store = await open();
      const policies = new PolicyStore(store);
      const policy = common.TablePolicy.fromPartial({
        table: "users",
        replicationFactor: 0.5,
        minValidatorCopies: 2,
        shardKeys: ["id"],
        shardFunction: common.ShardFunction.SHARD_FUNCTION_HASH,
        initialShardCount: 4,
      });
      const created = await policies.put(policy, 0);
      expect(created.ok).toBe(true);
      const stored = await policies.get("users");
      expect(stored).toEqual({ ...policy, version: created.ok ? created.version : -1 });
      expect((await policies.put({ ...stored!, replicationFactor: 1 }, stored!.version)).ok).toBe(true);
      expect((await policies.put({ ...stored!, replicationFactor: 0.2 }, stored!.version)).ok).toBe(false);
      expect((await policies.list()).map((item) => item.replicationFactor)).toEqual([1]);
    });

    test("ShardMap: atomic creation and epoch compare-and-set (two arbiters, one winner)", async () => {
      const a = await open();
      const b = await open();
      const mapA = new ShardMap(a);
      const mapB = new ShardMap(b);
      const shard = (index: number) =>
        common.ShardInfo.fromPartial({
          shardId: `users-${index}`,
          table: "users",
          index,
          keyRange: { hashStart: index * 1000, hashEnd: (index + 1) * 1000 },
          epoch: 1,
          primaryNodeId: "n1",
          replicaNodeIds: ["n1", "n2"],
          state: common.ShardState.SHARD_STATE_ACTIVE,
        });
      expect((await mapA.create([shard(0), shard(1)])).ok).toBe(true);
      expect(await mapA.create([shard(2), shard(1)])).toMatchObject({ ok: false, conflictShardId: "users-1" });
      expect(await mapA.get("users-2")).toBeNull();
      expect((await mapB.list("users")).map((item) => item.shardId)).toEqual(["users-0", "users-1"]);
      expect((await mapB.get("users-0"))!.keyRange).toEqual(shard(0).keyRange);

      const [first, second] = await Promise.all([
        mapA.changeEpoch("users-0", 1, () => ({ primaryNodeId: "n2", replicaNodeIds: ["n2", "n1"] })),
        mapB.changeEpoch("users-0", 1, () => ({ primaryNodeId: "n3", replicaNodeIds: ["n3", "n1"] })),
      ]);
      expect([first.ok, second.ok].filter(Boolean)).toHaveLength(1);
      const winner = first.ok ? first.shard : second.ok ? second.shard : null;
      const stored = await mapA.get("users-0");
      expect(stored).toMatchObject({ epoch: 2, primaryNodeId: winner!.primaryNodeId });
      const loser = first.ok ? second : first;
      expect(loser).toMatchObject({ ok: false, current: { epoch: 2 } });
      // A size report does not change the epoch and does not make an epoch change fail.
      await mapB.setSize("users-0", 4096);
      expect(await mapA.changeEpoch("users-0", 2, () => ({ state: common.ShardState.SHARD_STATE_MOVING }))).toMatchObject({
        ok: true,
        shard: { epoch: 3, sizeBytes: 4096, state: common.ShardState.SHARD_STATE_MOVING },
      });
    });

    test("SchemaStore versions table schemas one step at a time", async () => {
      const store = await open();
      const schemas = new SchemaStore(store);
      const v1 = { table: "users", version: 1, statements: ["CREATE TABLE users (id INTEGER PRIMARY KEY)"], migration: [], updatedAtMs: 1 };
      expect((await schemas.put(v1, 0)).ok).toBe(true);
      const stored = await schemas.get("users");
      expect(stored).toMatchObject(v1);
      await expect(schemas.put({ ...v1, version: 3 }, stored!.storeVersion)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      const v2 = {
        ...v1,
        version: 2,
        statements: [...v1.statements, "ALTER TABLE users ADD COLUMN name TEXT"],
        migration: ["ALTER TABLE users ADD COLUMN name TEXT"],
      };
      expect((await schemas.put(v2, stored!.storeVersion)).ok).toBe(true);
      expect((await schemas.put({ ...v2, version: 3 }, stored!.storeVersion)).ok).toBe(false);
      await schemas.recordApplied({ table: "users", nodeId: "n1", version: 2, atMs: 5 });
      await schemas.recordApplied({ table: "users", nodeId: "n2", version: 1, atMs: 5 });
      expect((await schemas.appliedVersions("users")).map((applied) => [applied.nodeId, applied.version])).toEqual([
        ["n1", 2],
        ["n2", 1],
      ]);
    });

    test("GrantStore: roles with per-table privileges, identities with roles", async () => {
      const store = await open();
      const grants = new GrantStore(store);
      await grants.grant("reader", "*", ["SELECT"]);
      await grants.grant("writer", "accounts", ["INSERT", "UPDATE"]);
      await grants.grant("writer", "accounts", ["DELETE"]);
      await grants.assignRole("spiffe://net/client/alice", "reader");
      await grants.assignRole("spiffe://net/client/alice", "writer");
      expect(await grants.privilegesOf("spiffe://net/client/alice", "accounts")).toEqual(["SELECT", "INSERT", "UPDATE", "DELETE"]);
      expect(await grants.privilegesOf("spiffe://net/client/alice", "orders")).toEqual(["SELECT"]);
      await grants.revoke("writer", "accounts", ["UPDATE", "DELETE"]);
      expect(await grants.privilegesOf("spiffe://net/client/alice", "accounts")).toEqual(["SELECT", "INSERT"]);
      await grants.unassignRole("spiffe://net/client/alice", "reader");
      expect(await grants.privilegesOf("spiffe://net/client/alice", "orders")).toEqual([]);
      expect(await grants.privilegesOf("spiffe://net/client/nobody", "orders")).toEqual([]);
      await expect(grants.grant("writer", "t", ["DROP" as never])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  });
});
