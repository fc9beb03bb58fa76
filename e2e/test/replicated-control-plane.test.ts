/**
 * Coordinators and routers are replicas over a shared PostgreSQL control store (issue 5): two of each,
 * clients on the second pair. When the second coordinator dies in the middle of a transaction and is
 * not restarted, the first one finishes it — COMMIT delivered if it was decided, abort otherwise.
 */
import { common, nodeagent, router } from "@mycelium/proto";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { eventually, TestCluster } from "@mycelium/testkit";
import { MyceliumClient } from "@mycelium/client";

jest.setTimeout(300_000);

let cluster: TestCluster;
let viaSecond: MyceliumClient;
let viaFirst: MyceliumClient;
let a: number;
let b: number;

beforeAll(async () => {
  cluster = await TestCluster.start({ validators: 2, miners: 1, backend: "postgres", controlStore: "postgres", coordinators: 2, routers: 2 });
  const replicas = cluster.info.replicas!;
  const second = (role: string) => replicas.find((r) => r.name === `${role}-2`)!;
  const paths = cluster.cluster.layout.certificate("admin", "admin");
  viaSecond = new MyceliumClient({ coordinatorAddress: `127.0.0.1:${second("coordinator").port}`, routerAddress: `127.0.0.1:${second("shard-router").port}`, tls: paths, networkId: cluster.info.networkId, deadlineMs: 15_000 });
  viaFirst = cluster.client("admin", { deadlineMs: 15_000 });
  // Placement uses the nodes that are up when the policy is set: on a loaded machine a heartbeat can be
  // late, so wait until the second router sees all three, or every shard may land on one node.
  await eventually(async () => {
    const { nodes } = await viaSecond.router.listNodes(router.ListNodesRequest.create({}));
    expect(nodes.filter((n) => n.status === common.NodeStatus.NODE_STATUS_UP)).toHaveLength(cluster.info.nodes.length);
  }, { timeoutMs: 30_000, intervalMs: 200 });
  // Policies and tables through the second pair, reads through the first: both pairs see one cluster.
  await viaSecond.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "accounts", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 0.5 }) }));
  await viaSecond.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
  const ids = Array.from({ length: 32 }, (_, i) => i + 1);
  await viaSecond.execute(`INSERT INTO accounts (id, balance) VALUES ${ids.map(() => "(?, 100)").join(", ")}`, ids);
  const primary = async (id: number) => (await viaFirst.explain("SELECT * FROM accounts WHERE id = ?", [id])).targets[0]!.primaryNodeId;
  a = 1;
  b = 2;
  while ((await primary(b)) === (await primary(a))) {
    if (++b > 32) throw new Error("every account's primary is on one node: placement saw one node up");
  }
});

afterAll(async () => {
  viaSecond?.close();
  await cluster?.stop();
});

async function balances(): Promise<unknown[]> {
  return (await viaFirst.execute("SELECT id, balance FROM accounts WHERE id IN (?, ?) ORDER BY id", [a, b])).rows;
}

async function nothingPrepared(): Promise<void> {
  const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: cluster.cluster.layout.certificate("admin", "admin"), networkId: cluster.info.networkId, protocolVersion: "1.0.0" });
  try {
    for (const node of cluster.info.nodes) {
      const { transactions } = await pool.service(nodeagent.NodeAgentServiceService, cluster.nodeAddress(node.name)).listPrepared(nodeagent.ListPreparedRequest.create({}));
      expect(transactions).toEqual([]);
    }
  } finally {
    pool.close();
  }
}

test("both router replicas and both coordinators serve the same cluster", async () => {
  expect(await balances()).toEqual([[a, 100], [b, 100]]);
  const { nodes } = await viaSecond.router.listNodes(router.ListNodesRequest.create({}));
  expect(nodes).toHaveLength(3);
});

test.each([{ point: "coordinator.after-decision" }, { point: "coordinator.after-all-prepares" }])("the second coordinator dies at $point; the first finishes its transaction", async ({ point }) => {
  await cluster.kill("coordinator-2", "SIGTERM");
  await cluster.restart("coordinator-2", { MYCELIUM_FAULT_POINTS: point });
  const before = (await balances()) as Array<[number, number]>;
  const transfer = viaSecond.executeTransaction([
    { sql: "UPDATE accounts SET balance = balance - 10 WHERE id = ?", params: [a] },
    { sql: "UPDATE accounts SET balance = balance + 10 WHERE id = ?", params: [b] },
  ]);
  await transfer.catch(() => undefined);
  await eventually(() => expect(cluster.process("coordinator-2").child.signalCode).toBe("SIGKILL"), { timeoutMs: 15_000 });
  // Not restarted: the first coordinator (recovery loop, and the participants' GetDecision) resolves it.
  const decided = point === "coordinator.after-decision";
  const want = decided ? [[a, before[0]![1] - 10], [b, before[1]![1] + 10]] : before;
  await eventually(async () => {
    expect(await balances()).toEqual(want);
    await nothingPrepared();
  }, { timeoutMs: 30_000, intervalMs: 300 });
  await cluster.restart("coordinator-2", { MYCELIUM_FAULT_POINTS: "" });
});
