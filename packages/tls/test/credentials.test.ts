import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  channelCredentials,
  createCertificateAuthority,
  identityFromCertificate,
  initCertificateDirectory,
  issueCertificate,
  issueToDirectory,
  serverCredentials,
  TlsError,
  type ReloadingCredentials,
  type TlsPaths,
} from "@mycelium/tls";

// A one-method service with JSON messages, so these tests need nothing but grpc-js.
interface WhoAmIReply {
  caller: string | null;
  callerSerial: string | null;
}
const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (buffer: Buffer) => JSON.parse(buffer.toString("utf8")) as unknown,
};
const testService: grpc.ServiceDefinition = {
  whoAmI: {
    path: "/mycelium.test.v1.TestService/WhoAmI",
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};
const TestClient = grpc.makeGenericClientConstructor(testService, "TestService");

const networkId = "testnet";
let dir: string;
let otherDir: string;
const cleanups: Array<() => void> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mycelium-tls-"));
  otherDir = mkdtempSync(join(tmpdir(), "mycelium-tls-other-"));
  initCertificateDirectory(dir, networkId);
  initCertificateDirectory(otherDir, networkId);
});

afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
});

interface RunningServer {
  port: number;
  served: () => number;
  tls: ReloadingCredentials<grpc.ServerCredentials>;
}

async function startServer(paths: TlsPaths, options: { requireClientCertificate?: boolean; refreshIntervalMs?: number; onReloadError?: (error: TlsError) => void } = {}): Promise<RunningServer> {
  const tls = serverCredentials(paths, {
    requireClientCertificate: options.requireClientCertificate ?? true,
    ...(options.refreshIntervalMs ? { refreshIntervalMs: options.refreshIntervalMs } : {}),
    ...(options.onReloadError ? { onReloadError: options.onReloadError } : {}),
  });
  let served = 0;
  const server = new grpc.Server();
  server.addService(testService, {
    whoAmI: (call: grpc.ServerUnaryCall<unknown, WhoAmIReply>, callback: grpc.sendUnaryData<WhoAmIReply>) => {
      served += 1;
      const certificate = call.getAuthContext().sslPeerCertificate;
      const present = certificate?.raw !== undefined;
      callback(null, { caller: present ? identityFromCertificate(certificate!).uri : null, callerSerial: present ? certificate!.serialNumber : null });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", tls.credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
  cleanups.push(() => {
    server.forceShutdown();
    tls.close();
  });
  return { port, served: () => served, tls };
}

interface CallResult {
  reply: WhoAmIReply;
  serverIdentity: string;
  serverSerial: string;
}

/** One call on a fresh connection (a local subchannel pool, so no connection is shared between clients). */
function call(port: number, credentials: grpc.ChannelCredentials, host = "127.0.0.1"): Promise<CallResult> {
  const client = new TestClient(`${host}:${port}`, credentials, { "grpc.use_local_subchannel_pool": 1 });
  cleanups.push(() => client.close());
  return callOn(client);
}

function callOn(client: grpc.Client): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const pending: grpc.ClientUnaryCall = (client as unknown as Record<string, Function>).whoAmI!(
      {},
      { deadline: Date.now() + 20_000 },
      (error: grpc.ServiceError | null, reply: WhoAmIReply) => {
        if (error) return reject(error);
        const peer = pending.getAuthContext()?.sslPeerCertificate;
        if (!peer?.raw) return reject(new Error("no server certificate in the auth context"));
        resolve({ reply, serverIdentity: identityFromCertificate(peer).uri, serverSerial: peer.serialNumber });
      },
    );
  });
}

async function expectRejected(result: Promise<unknown>): Promise<void> {
  await expect(result).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
}

function clientTls(paths: TlsPaths, verifyHostname = true): ReloadingCredentials<grpc.ChannelCredentials> {
  const tls = channelCredentials(paths, { verifyHostname });
  cleanups.push(() => tls.close());
  return tls;
}

function serialOf(path: string): string {
  return new X509Certificate(readFileSync(path)).serialNumber;
}

describe("mutual TLS", () => {
  let serverPaths: TlsPaths;
  let clientPaths: TlsPaths;

  beforeAll(() => {
    serverPaths = issueToDirectory(dir, { networkId, role: "node-agent", name: "n1" });
    clientPaths = issueToDirectory(dir, { networkId, role: "client", name: "alice" });
  });

  it("serves a client with a certificate from the cluster CA, and each side sees the other's identity", async () => {
    const server = await startServer(serverPaths);
    const result = await call(server.port, clientTls(clientPaths).credentials);
    expect(result.reply.caller).toBe("spiffe://testnet/client/alice");
    expect(result.serverIdentity).toBe("spiffe://testnet/node-agent/n1");
    expect(result.serverSerial).toBe(serialOf(serverPaths.certPath));
    expect(server.served()).toBe(1);
  });

  it("rejects a client without a certificate", async () => {
    const server = await startServer(serverPaths);
    await expectRejected(call(server.port, grpc.credentials.createSsl(readFileSync(serverPaths.caPath))));
    expect(server.served()).toBe(0);
  });

  it("rejects a client certificate from another CA, even when the client trusts ours", async () => {
    const server = await startServer(serverPaths);
    const intruder = issueToDirectory(otherDir, { networkId, role: "admin", name: "mallory" });
    const credentials = grpc.credentials.createSsl(readFileSync(serverPaths.caPath), readFileSync(intruder.keyPath), readFileSync(intruder.certPath));
    await expectRejected(call(server.port, credentials));
    expect(server.served()).toBe(0);
  });

  it("rejects plaintext", async () => {
    const server = await startServer(serverPaths);
    await expectRejected(call(server.port, grpc.credentials.createInsecure()));
    expect(server.served()).toBe(0);
  });

  it("a client refuses a server whose certificate comes from another CA, whether or not it checks hostnames", async () => {
    const impostor = await startServer(issueToDirectory(otherDir, { networkId, role: "node-agent", name: "n1" }));
    await expectRejected(call(impostor.port, clientTls(clientPaths, true).credentials));
    await expectRejected(call(impostor.port, clientTls(clientPaths, false).credentials));
    expect(impostor.served()).toBe(0);
  });

  it("checks the server's DNS/IP names only when verifyHostname is set", async () => {
    const elsewhere = issueToDirectory(dir, { networkId, role: "shard-router", name: "r1", hosts: ["router.example"] });
    const server = await startServer(elsewhere);
    await expectRejected(call(server.port, clientTls(clientPaths, true).credentials));
    expect(server.served()).toBe(0);
    const result = await call(server.port, clientTls(clientPaths, false).credentials);
    expect(result.serverIdentity).toBe("spiffe://testnet/shard-router/r1");
  });

  it("without required client certificates, serves anyone but exposes only certificates our CA issued", async () => {
    const server = await startServer(serverPaths, { requireClientCertificate: false });
    const anonymous = await call(server.port, grpc.credentials.createSsl(readFileSync(serverPaths.caPath)));
    expect(anonymous.reply.caller).toBeNull();
    // TLS lets a forged certificate through in this mode; grpc-js must not hand it to handlers as an identity.
    const forged = issueToDirectory(otherDir, { networkId, role: "admin", name: "root" });
    const forgedCredentials = grpc.credentials.createSsl(readFileSync(serverPaths.caPath), readFileSync(forged.keyPath), readFileSync(forged.certPath));
    expect((await call(server.port, forgedCredentials)).reply.caller).toBeNull();
    expect((await call(server.port, clientTls(clientPaths).credentials)).reply.caller).toBe("spiffe://testnet/client/alice");
    expect(server.served()).toBe(3);
  });

  it("refuses to start on unusable files", () => {
    const mismatched = { ...serverPaths, keyPath: clientPaths.keyPath };
    expect(() => serverCredentials(mismatched, { requireClientCertificate: true })).toThrow(expect.objectContaining({ code: "KEY_MISMATCH" }));
    expect(() => channelCredentials({ ...clientPaths, caPath: join(otherDir, "ca.crt") }, { verifyHostname: true })).toThrow(
      expect.objectContaining({ code: "UNTRUSTED" }),
    );
    expect(() => serverCredentials({ ...serverPaths, certPath: join(dir, "missing.crt") }, { requireClientCertificate: true })).toThrow(
      expect.objectContaining({ code: "FILE_ERROR" }),
    );
  });
});

describe("reloading certificates from disk", () => {
  it("new connections get a re-issued server certificate without restarting the server; open ones keep theirs", async () => {
    const serverPaths = issueToDirectory(dir, { networkId, role: "coordinator", name: "c1" });
    const clientPaths = issueToDirectory(dir, { networkId, role: "client", name: "bob" });
    const server = await startServer(serverPaths, { refreshIntervalMs: 25 });
    const credentials = clientTls(clientPaths).credentials;
    const oldSerial = serialOf(serverPaths.certPath);
    const openClient = new TestClient(`127.0.0.1:${server.port}`, credentials, { "grpc.use_local_subchannel_pool": 1 });
    cleanups.push(() => openClient.close());
    expect((await callOn(openClient)).serverSerial).toBe(oldSerial);

    issueToDirectory(dir, { networkId, role: "coordinator", name: "c1" });
    const newSerial = serialOf(serverPaths.certPath);
    expect(newSerial).not.toBe(oldSerial);
    // The provider notices on its own timer; keep opening fresh connections until one shows the new certificate.
    let seen = oldSerial;
    while (seen === oldSerial) seen = (await call(server.port, credentials)).serverSerial;
    expect(seen).toBe(newSerial);
    expect(server.tls.material.serialNumber).toBe(newSerial);
    expect((await callOn(openClient)).serverSerial).toBe(oldSerial);
  });

  it("keeps the old material while the files on disk are unusable, reporting each problem once", async () => {
    const serverPaths = issueToDirectory(dir, { networkId, role: "replicator", name: "rep1" });
    const clientPaths = issueToDirectory(dir, { networkId, role: "client", name: "carol" });
    const errors: TlsError[] = [];
    // A long interval: this test drives reloads itself.
    const server = await startServer(serverPaths, { refreshIntervalMs: 3_600_000, onReloadError: (error) => errors.push(error) });
    const credentials = clientTls(clientPaths).credentials;
    const oldSerial = serialOf(serverPaths.certPath);
    const goodKey = readFileSync(serverPaths.keyPath, "utf8");
    const ca = { certPem: readFileSync(join(dir, "ca.crt"), "utf8"), keyPem: readFileSync(join(dir, "ca.key"), "utf8") };
    const next = issueCertificate(ca, { networkId, role: "replicator", name: "rep1" });
    const foreignCa = createCertificateAuthority({ networkId });
    const foreign = issueCertificate(foreignCa, { networkId, role: "replicator", name: "rep1" });

    const attempts: Array<[string, () => void, TlsError["code"]]> = [
      ["garbage certificate", () => writeFileSync(serverPaths.certPath, "not a certificate\n"), "INVALID_CERTIFICATE"],
      ["new certificate, old key (a rotation half done)", () => writeFileSync(serverPaths.certPath, next.certPem), "KEY_MISMATCH"],
      ["certificate from another CA", () => (writeFileSync(serverPaths.certPath, foreign.certPem), writeFileSync(serverPaths.keyPath, foreign.keyPem)), "UNTRUSTED"],
      ["missing certificate file", () => unlinkSync(serverPaths.certPath), "FILE_ERROR"],
    ];
    for (const [, breakFiles, code] of attempts) {
      breakFiles();
      expect(await server.tls.reload()).toBe(false);
      expect(await server.tls.reload()).toBe(false);
      expect(errors.map((error) => error.code)).toEqual(expect.arrayContaining([code]));
      const result = await call(server.port, credentials);
      expect(result.serverSerial).toBe(oldSerial);
      expect(server.tls.material.serialNumber).toBe(oldSerial);
    }
    expect(errors.map((error) => error.code)).toEqual(attempts.map(([, , code]) => code));

    writeFileSync(serverPaths.keyPath, next.keyPem);
    writeFileSync(serverPaths.certPath, next.certPem);
    expect(await server.tls.reload()).toBe(true);
    expect((await call(server.port, credentials)).serverSerial).toBe(new X509Certificate(next.certPem).serialNumber);
    expect(goodKey).not.toBe(next.keyPem);
  });

  it("a client presents its re-issued certificate on new connections", async () => {
    const server = await startServer(issueToDirectory(dir, { networkId, role: "shard-router", name: "r2" }));
    const clientPaths = issueToDirectory(dir, { networkId, role: "node-agent", name: "n7" });
    const tls = clientTls(clientPaths);
    const before = (await call(server.port, tls.credentials)).reply.callerSerial;
    issueToDirectory(dir, { networkId, role: "node-agent", name: "n7" });
    expect(await tls.reload()).toBe(true);
    const after = (await call(server.port, tls.credentials)).reply.callerSerial;
    expect(before).not.toBe(after);
    expect(after).toBe(serialOf(clientPaths.certPath));
  });
});
