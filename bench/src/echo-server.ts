/**
 * A server process for the RPC baseline: the same trivial call answered by bare grpc-js (mTLS, no
 * Mycelium layer) and by a MyceliumServer (identity, metadata, authorization, tracing, metrics).
 * Prints "ports <bare> <mycelium>" when listening; stops on SIGTERM.
 */
import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import { replicator } from "@mycelium/proto";

/** One trivial method of a real service: what every internal hop costs, without the work. */
export const echoService = { getStatus: replicator.ReplicatorServiceService.getStatus } as const;
import { authorize, MyceliumServer } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { serverCredentials } from "@mycelium/tls";

const [certPath, keyPath, caPath, networkId] = process.argv.slice(2) as [string, string, string, string];

export const echoDefinition = {
  echo: {
    path: "/bench.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (value: Buffer) => value,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (value: Buffer) => value,
  },
} as const;

async function main(): Promise<void> {
  const bare = new grpc.Server();
  bare.addService(echoDefinition as unknown as grpc.ServiceDefinition, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
  });
  const credentials = grpc.ServerCredentials.createSsl(fs.readFileSync(caPath), [{ cert_chain: fs.readFileSync(certPath), private_key: fs.readFileSync(keyPath) }], true);
  const barePort = await new Promise<number>((resolve, reject) => bare.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))));

  const telemetry = createSilentTelemetry("bench-echo");
  const server = new MyceliumServer({
    serviceName: "bench",
    telemetry,
    tls: { certPath, keyPath, caPath },
    networkId,
    minProtocolVersion: "1.0.0",
    authorization: authorize(echoService, { getStatus: ["admin", "client", "coordinator"] }),
    connectionLimit: 1000,
  });
  server.addService(echoService, {
    getStatus: async () => replicator.GetStatusResponse.create({ replicatorId: "echo" }),
  });
  const { port } = await server.listen("127.0.0.1", 0);
  server.setServing(true);
  void serverCredentials;
  process.stdout.write(`ports ${barePort} ${port}\n`);
  process.on("SIGTERM", () => {
    bare.forceShutdown();
    void server.shutdown(100).then(() => process.exit(0));
  });
}

if (require.main === module) void main();
