/**
 * Issue 2's observability: one statement is one trace across coordinator, router and node-agent;
 * every service exposes request counters on /metrics; health answers SERVING; reflection lets a client
 * that knows nothing else discover and call the API.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { execFile } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as protobuf from "protobufjs";
import * as descriptor from "protobufjs/ext/descriptor";
import { common, replicator, router } from "@mycelium/proto";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry, InMemorySpanExporter } from "@mycelium/telemetry";
import { InProcessCluster } from "@mycelium/testkit";

jest.setTimeout(120_000);

const exporter = new InMemorySpanExporter();
let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.start({ spanExporters: [exporter] });
  const admin = cluster.client("admin");
  await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "users", shardKeys: ["user_id"], initialShardCount: 4, replicationFactor: 0.5 }) }));
  await admin.execute("CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT)");
});

afterAll(async () => {
  await cluster?.stop();
});

function credentials(role: "client" | "admin"): grpc.ChannelCredentials {
  const paths = cluster.cluster.layout.certificate(role, role);
  return grpc.credentials.createSsl(fs.readFileSync(paths.caPath), fs.readFileSync(paths.keyPath), fs.readFileSync(paths.certPath));
}

function coordinatorAddress(): string {
  return `127.0.0.1:${cluster.info.services.coordinator.port}`;
}

function metadata(): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set("x-mycelium-network-id", cluster.info.networkId);
  m.set("x-mycelium-protocol-version", "1.0.0");
  return m;
}

test("one statement is one trace with spans in the coordinator, the router and the node-agent", async () => {
  exporter.reset();
  await cluster.client("client").execute("INSERT INTO users (user_id, name) VALUES (?, ?)", [1, "ada"]);
  const spans = exporter.getFinishedSpans();
  const execute = spans.find((s) => s.name === "TransactionService/Execute" && s.resource.attributes["service.name"] === "coordinator");
  expect(execute).toBeDefined();
  const traceId = execute!.spanContext().traceId;
  const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
  const services = new Set(inTrace.map((s) => String(s.resource.attributes["service.name"])));
  expect([...services].sort()).toEqual(["coordinator", "node-agent", "shard-router"]);
  // Server spans of the router and the node-agent hang under the coordinator's client spans.
  const routeServer = inTrace.find((s) => s.name === "ShardRouterService/Route" && s.resource.attributes["service.name"] === "shard-router")!;
  const nodeServer = inTrace.find((s) => s.name === "NodeAgentService/Execute" && s.resource.attributes["service.name"] === "node-agent")!;
  const byId = new Map(inTrace.map((s) => [s.spanContext().spanId, s]));
  expect(byId.get(routeServer.parentSpanContext!.spanId)!.resource.attributes["service.name"]).toBe("coordinator");
  expect(byId.get(nodeServer.parentSpanContext!.spanId)!.resource.attributes["service.name"]).toBe("coordinator");
});

function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: urlPath }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

test("every service serves /metrics with mycelium_ request counters, and /healthz and /readyz", async () => {
  // Every service has served a call by now except the replicator; ask it something.
  const pool = new ClientPool({ telemetry: createSilentTelemetry(), tls: cluster.cluster.layout.certificate("admin", "admin"), networkId: cluster.info.networkId, protocolVersion: "1.0.0" });
  await pool.service(replicator.ReplicatorServiceService, `127.0.0.1:${cluster.info.services.replicator.port}`).getStatus(replicator.GetStatusRequest.create({}));
  pool.close();
  for (const service of cluster.services) {
    const port = service.runtime.opsPort!;
    const metrics = await get(port, "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^mycelium_rpc_server_requests_total\{.*method=.*code="OK".*\} \d+/m);
    expect(metrics.body).toContain("mycelium_uptime_seconds");
    expect((await get(port, "/healthz")).status).toBe(200);
    expect((await get(port, "/readyz")).body).toBe("ready\n");
  }
  const coordinator = await get(cluster.service("coordinator").runtime.opsPort!, "/metrics");
  expect(coordinator.body).toMatch(/mycelium_transactions_total\{.*outcome="committed".*\} [1-9]/);
});

test("grpc.health.v1 answers SERVING for the server and for each service", async () => {
  const definition = protoLoader.loadSync(require.resolve("grpc-health-check/proto/health/v1/health.proto"), { enums: String });
  const Health = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
  const client = new Health(coordinatorAddress(), credentials("client"));
  try {
    for (const service of ["", "mycelium.coordinator.v1.TransactionService"]) {
      const response = await new Promise<{ status: string }>((resolve, reject) =>
        (client as unknown as { check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).check({ service }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(response.status).toBe("SERVING");
    }
  } finally {
    client.close();
  }
});

/** A client that knows only the reflection protocol: it discovers the services and their types. */
async function reflect(address: string, role: "client" | "admin"): Promise<{ services: string[]; root: protobuf.Root }> {
  const reflectionProto = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto", "grpc", "reflection", "v1", "reflection.proto");
  const definition = protoLoader.loadSync(reflectionProto, { keepCase: true });
  const ServerReflection = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }).grpc.reflection.v1.ServerReflection;
  const client = new ServerReflection(address, credentials(role));
  const ask = (request: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const call = (client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, Record<string, unknown>> }).ServerReflectionInfo();
      call.on("data", (response) => {
        resolve(response);
        call.end();
      });
      call.on("error", reject);
      call.write(request);
    });
  try {
    const listed = await ask({ list_services: "" });
    const services = ((listed.list_services_response as { service: Array<{ name: string }> }).service ?? []).map((s) => s.name);
    const files = new Map<string, Buffer>();
    for (const service of services.filter((s) => s.startsWith("mycelium."))) {
      const response = await ask({ file_containing_symbol: service });
      for (const bytes of (response.file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto) {
        const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as { name: string };
        files.set(file.name, bytes);
      }
    }
    const set = descriptor.FileDescriptorSet.create({ file: [...files.values()].map((b) => descriptor.FileDescriptorProto.decode(b)) } as never);
    return { services, root: (protobuf.Root as unknown as { fromDescriptor(s: unknown): protobuf.Root }).fromDescriptor(set) };
  } finally {
    client.close();
  }
}

test("reflection lists the services, and a reflection-only client can call them", async () => {
  const { services, root } = await reflect(coordinatorAddress(), "client");
  expect(services).toEqual(expect.arrayContaining([
    "mycelium.coordinator.v1.TransactionService",
    "mycelium.coordinator.v1.TransactionAdminService",
    "mycelium.coordinator.v1.DecisionService",
    "grpc.health.v1.Health",
  ]));
  // Build the request from the discovered types only, and call Execute.
  const ExecuteRequest = root.lookupType("mycelium.coordinator.v1.ExecuteRequest");
  const ExecuteResponse = root.lookupType("mycelium.coordinator.v1.ExecuteResponse");
  const request = ExecuteRequest.encode(ExecuteRequest.fromObject({ statement: { sql: "SELECT name FROM users WHERE user_id = ?", params: [{ integer: 1 }] } })).finish();
  const client = new grpc.Client(coordinatorAddress(), credentials("client"));
  const response = await new Promise<Buffer>((resolve, reject) =>
    client.makeUnaryRequest("/mycelium.coordinator.v1.TransactionService/Execute", (b: Buffer) => b, (b: Buffer) => b, Buffer.from(request), metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!))),
  );
  client.close();
  const decoded = ExecuteResponse.toObject(ExecuteResponse.decode(response), { defaults: false }) as { result: { columns: string[]; rows: Array<{ values: Array<{ text?: string }> }> } };
  expect(decoded.result.columns).toEqual(["name"]);
  expect(decoded.result.rows[0]!.values[0]!.text).toBe("ada");
});

/** grpcurl, when installed (.ci/run installs it): the generic gRPC tool operators use. */
const grpcurl = [process.env.GRPCURL, path.join(__dirname, "..", "..", ".tools", "bin", "grpcurl")].find((p) => p && fs.existsSync(p));
(grpcurl ? test : test.skip)("grpcurl lists and calls the coordinator through reflection", async () => {
  const paths = cluster.cluster.layout.certificate("client", "client");
  const base = ["-cacert", paths.caPath, "-cert", paths.certPath, "-key", paths.keyPath, "-H", `x-mycelium-network-id: ${cluster.info.networkId}`, "-H", "x-mycelium-protocol-version: 1.0.0", "-max-time", "10"];
  const run = (args: string[]) =>
    new Promise<string>((resolve, reject) => execFile(grpcurl!, [...base, ...args], (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))));
  expect(await run([coordinatorAddress(), "list"])).toContain("mycelium.coordinator.v1.TransactionService");
  const out = await run(["-d", JSON.stringify({ statement: { sql: "SELECT name FROM users WHERE user_id = 1" } }), coordinatorAddress(), "mycelium.coordinator.v1.TransactionService/Execute"]);
  expect(JSON.parse(out).result.rows[0].values[0].text).toBe("ada");
});
