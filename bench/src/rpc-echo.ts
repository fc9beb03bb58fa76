/**
 * RPC round trip on loopback over mutual TLS, server in another process:
 *   bare grpc-js (the floor), and Mycelium's server + client kit (what every internal hop costs).
 * Usage: node bench/dist/rpc-echo.js [count]
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { replicator } from "@mycelium/proto";
import { echoService } from "./echo-server";
import { ClientPool } from "@mycelium/rpc";
import { createSilentTelemetry } from "@mycelium/telemetry";
import { initCertificateDirectory, issueToDirectory } from "@mycelium/tls";
import { formatRow, header, measure } from "./stats";

export async function rpcEchoBaseline(count: number): Promise<{ bare: Awaited<ReturnType<typeof measure>>; mycelium: Awaited<ReturnType<typeof measure>>; bare16: Awaited<ReturnType<typeof measure>>; mycelium16: Awaited<ReturnType<typeof measure>> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-bench-rpc-"));
  initCertificateDirectory(dir, "bench");
  const server = issueToDirectory(dir, { networkId: "bench", role: "replicator", name: "echo" });
  const client = issueToDirectory(dir, { networkId: "bench", role: "admin", name: "bench" });
  const child = spawn(process.execPath, [path.join(__dirname, "echo-server.js"), server.certPath, server.keyPath, server.caPath, "bench"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [barePort, myceliumPort] = await new Promise<number[]>((resolve, reject) => {
      let text = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        const match = /ports (\d+) (\d+)/.exec(text);
        if (match) resolve([Number(match[1]), Number(match[2])]);
      });
      child.on("exit", (code) => reject(new Error(`echo server exited ${code}`)));
    });
    const credentials = grpc.credentials.createSsl(fs.readFileSync(client.caPath), fs.readFileSync(client.keyPath), fs.readFileSync(client.certPath));
    const bareClient = new grpc.Client(`127.0.0.1:${barePort}`, credentials);
    const payload = Buffer.alloc(64, 1);
    const bareCall = () =>
      new Promise<void>((resolve, reject) =>
        bareClient.makeUnaryRequest("/bench.Echo/Echo", (v: Buffer) => v, (v: Buffer) => v, payload, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => (e ? reject(e) : resolve())),
      );
    const pool = new ClientPool({ telemetry: createSilentTelemetry("bench"), tls: client, networkId: "bench", protocolVersion: "1.0.0" });
    const service = pool.service(echoService, `127.0.0.1:${myceliumPort}`);
    const myceliumCall = () => service.getStatus(replicator.GetStatusRequest.create({}));
    await measure(500, 4, bareCall);
    await measure(500, 4, myceliumCall);
    const bare = await measure(count, 1, bareCall);
    const mycelium = await measure(count, 1, myceliumCall);
    const bare16 = await measure(count * 2, 16, bareCall);
    const mycelium16 = await measure(count * 2, 16, myceliumCall);
    bareClient.close();
    pool.close();
    return { bare, mycelium, bare16, mycelium16 };
  } finally {
    child.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const count = Number(process.argv[2] ?? 3000);
  void rpcEchoBaseline(count).then((r) => {
    console.log(header);
    console.log(formatRow("bare grpc-js mTLS echo, sequential", r.bare));
    console.log(formatRow("Mycelium rpc kit echo, sequential", r.mycelium));
    console.log(formatRow("bare grpc-js mTLS echo, 16 in flight", r.bare16));
    console.log(formatRow("Mycelium rpc kit echo, 16 in flight", r.mycelium16));
    console.log(`overhead of the kit at p50: ${(r.mycelium.p50Ms - r.bare.p50Ms).toFixed(3)} ms`);
  });
}
