/**
 * Who may talk to whom (issue 2): every way of calling a node-agent without the right to is refused
 * with its gRPC status, and none is served — the INSERT each attempt carries never lands. A
 * coordinator identity with the right metadata is the control that shows the call itself works.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { common, nodeagent, router, toValue } from "@mycelium/proto";
import { ClientPool, type ErrorCode } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { initCertificateDirectory, issueToDirectory, type TlsPaths } from "@mycelium/tls";
import { TestCluster } from "@mycelium/testkit";

jest.setTimeout(120_000);

let cluster: TestCluster;
let target: router.ShardTarget;
let otherCaDir: string;

beforeAll(async () => {
  cluster = await TestCluster.start({ validators: 2, miners: 1 });
  const admin = cluster.client("admin");
  await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "marks", shardKeys: ["id"], initialShardCount: 2, replicationFactor: 0.5 }) }));
  await admin.execute("CREATE TABLE marks (id INTEGER PRIMARY KEY, who TEXT)");
  [target] = (await admin.explain("INSERT INTO marks (id, who) VALUES (1, 'x')")).targets as [router.ShardTarget];
  otherCaDir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-other-ca-"));
  initCertificateDirectory(otherCaDir, cluster.info.networkId);
});

afterAll(async () => {
  await cluster?.stop();
  fs.rmSync(otherCaDir, { recursive: true, force: true });
});

/** An INSERT of a marker row, sent straight to the shard's primary node-agent. */
function insertRequest(id: number, who: string): nodeagent.ExecuteRequest {
  return nodeagent.ExecuteRequest.create({
    txId: "",
    shard: target.shard,
    statements: [{ sql: "INSERT INTO marks (id, who) VALUES (?, ?)", params: [toValue(id), toValue(who)] }],
    mode: nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT,
  });
}

async function viaPool(tls: TlsPaths, options: { networkId?: string; protocolVersion?: string }, id: number, who: string): Promise<ErrorCode | "OK"> {
  const pool = new ClientPool({
    telemetry: createSilentTelemetry(),
    tls,
    networkId: options.networkId ?? cluster.info.networkId,
    protocolVersion: options.protocolVersion ?? "1.0.0",
  });
  try {
    await pool.service(nodeagent.NodeAgentServiceService, target.primaryAddress).execute(insertRequest(id, who), { deadlineMs: 5000 });
    return "OK";
  } catch (error) {
    return (error as { code: ErrorCode }).code;
  } finally {
    pool.close();
  }
}

/** A raw grpc-js call with the given channel credentials and correct metadata. */
function viaRaw(credentials: grpc.ChannelCredentials, id: number, who: string): Promise<number> {
  const client = new grpc.Client(target.primaryAddress, credentials);
  const metadata = new grpc.Metadata();
  metadata.set("x-mycelium-network-id", cluster.info.networkId);
  metadata.set("x-mycelium-protocol-version", "1.0.0");
  const method = nodeagent.NodeAgentServiceService.execute;
  return new Promise((resolve) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, insertRequest(id, who), metadata, { deadline: Date.now() + 5000 }, (error) => {
      client.close();
      resolve(error ? error.code : grpc.status.OK);
    });
  });
}

/** Every attempt writes row 1 (the shard `target` owns) with its own marker; did this one land? */
async function landed(marker: string): Promise<boolean> {
  const result = await cluster.client("admin").execute("SELECT who FROM marks WHERE id = 1");
  return result.rows.some((row) => row[0] === marker);
}

const certs = () => cluster.cluster.layout;
const ca = () => fs.readFileSync(certs().certificate("admin", "admin").caPath);

test("no client certificate: the handshake fails (UNAVAILABLE)", async () => {
  expect(await viaRaw(grpc.credentials.createSsl(ca()), 1, "no-cert")).toBe(grpc.status.UNAVAILABLE);
  expect(await landed("no-cert")).toBe(false);
});

test("a certificate from another CA: refused (UNAVAILABLE)", async () => {
  const foreign = issueToDirectory(otherCaDir, { networkId: cluster.info.networkId, role: "coordinator", name: "impostor" });
  const credentials = grpc.credentials.createSsl(ca(), fs.readFileSync(foreign.keyPath), fs.readFileSync(foreign.certPath));
  expect(await viaRaw(credentials, 1, "other-ca")).toBe(grpc.status.UNAVAILABLE);
  expect(await landed("other-ca")).toBe(false);
});

test("plaintext: refused (UNAVAILABLE)", async () => {
  expect(await viaRaw(grpc.credentials.createInsecure(), 1, "plaintext")).toBe(grpc.status.UNAVAILABLE);
  expect(await landed("plaintext")).toBe(false);
});

test("a client identity calling a node-agent method: PERMISSION_DENIED", async () => {
  expect(await viaPool(certs().certificate("client", "client"), {}, 1, "client-role")).toBe("PERMISSION_DENIED");
  expect(await landed("client-role")).toBe(false);
});

test("another node-agent calling a node-agent method: PERMISSION_DENIED", async () => {
  const other = cluster.info.nodes.find((n) => n.nodeId !== target.primaryNodeId)!;
  expect(await viaPool(certs().certificate("node-agent", other.nodeId), {}, 1, "node-role")).toBe("PERMISSION_DENIED");
  expect(await landed("node-role")).toBe(false);
});

test("the wrong network id: FAILED_PRECONDITION naming both networks", async () => {
  const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: certs().certificate("coordinator", "coordinator"), networkId: "mainnet", protocolVersion: "1.0.0" });
  try {
    await expect(pool.service(nodeagent.NodeAgentServiceService, target.primaryAddress).execute(insertRequest(1, "wrong-network"))).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "WRONG_NETWORK",
      message: expect.stringMatching(/"mainnet".*"testnet"/),
    });
  } finally {
    pool.close();
  }
  expect(await landed("wrong-network")).toBe(false);
});

test("a protocol version below the minimum: FAILED_PRECONDITION naming both versions", async () => {
  const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: certs().certificate("coordinator", "coordinator"), networkId: cluster.info.networkId, protocolVersion: "0.9.0" });
  try {
    await expect(pool.service(nodeagent.NodeAgentServiceService, target.primaryAddress).execute(insertRequest(1, "old-protocol"))).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "PROTOCOL_VERSION",
      message: expect.stringMatching(/0\.9\.0.*1\.0\.0/),
    });
  } finally {
    pool.close();
  }
  expect(await landed("old-protocol")).toBe(false);
});

test("control: the coordinator identity with the right metadata is served", async () => {
  expect(await viaPool(certs().certificate("coordinator", "coordinator"), {}, 1, "coordinator")).toBe("OK");
  expect(await landed("coordinator")).toBe(true);
});

test("a client may not change policies (admin only)", async () => {
  await expect(
    cluster.client("client").router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "sneaky", shardKeys: ["id"] }) })),
  ).rejects.toMatchObject({ code: "PERMISSION_DENIED", message: expect.stringContaining("client \"client\" may not call ShardRouterService/SetPolicy") });
});
