/**
 * Certificates that renew themselves (issue 14): the chart's renewer (deploy/helm/mycelium/files/renew.js, the Job
 * and CronJob of certificates.mode=caSecret) keeps kubernetes.io/tls Secrets current through the Kubernetes API —
 * here a small stand-in for its Secrets endpoints —, the Secret lands in a volume laid out as the kubelet lays out
 * Secret volumes (an atomic "..data" link swap), and a running service takes the renewed certificate without a
 * restart: new handshakes present it and mycelium_tls_certificate_expiry_seconds moves. A certificate left to expire
 * fails readiness until a good one is loaded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tlsSocket from "node:tls";
import { freePort, stopProcess } from "@mycelium/cli";
import { eventually, runProcess } from "@mycelium/testkit";
import { createCertificateAuthority, issueCertificate, type PemPair } from "@mycelium/tls";

jest.setTimeout(240_000);

const repo = path.resolve(__dirname, "../..");
const renewScript = path.join(repo, "deploy/helm/mycelium/files/renew.js");
const namespace = "mycelium";

/** The Secrets endpoints of a Kubernetes API server, with resourceVersion checks; nothing else answers. */
class SecretsApi {
  readonly secrets = new Map<string, { metadata: { name: string; resourceVersion: string; labels?: Record<string, string> }; type: string; data: Record<string, string> }>();
  readonly requests: string[] = [];
  private version = 1;
  private server!: http.Server;
  url = "";

  async start(): Promise<void> {
    this.server = http.createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        this.requests.push(`${request.method} ${request.url}`);
        const answer = (status: number, value: unknown) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
        const base = `/api/v1/namespaces/${namespace}/secrets`;
        const name = request.url?.startsWith(base + "/") ? decodeURIComponent(request.url.slice(base.length + 1)) : undefined;
        if (request.method === "GET" && name) {
          const secret = this.secrets.get(name);
          return secret ? answer(200, secret) : answer(404, { message: `secrets "${name}" not found` });
        }
        if (request.method === "POST" && request.url === base) {
          const secret = JSON.parse(body);
          if (this.secrets.has(secret.metadata.name)) return answer(409, { message: "already exists" });
          secret.metadata.resourceVersion = String(this.version++);
          this.secrets.set(secret.metadata.name, secret);
          return answer(201, secret);
        }
        if (request.method === "PUT" && name) {
          const secret = JSON.parse(body);
          if (this.secrets.get(name)?.metadata.resourceVersion !== secret.metadata.resourceVersion) return answer(409, { message: "conflict" });
          secret.metadata.resourceVersion = String(this.version++);
          this.secrets.set(name, secret);
          return answer(200, secret);
        }
        return answer(405, { message: "not part of the stand-in" });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  text(name: string, key: string): string {
    return Buffer.from(this.secrets.get(name)!.data[key]!, "base64").toString("utf8");
  }
}

interface Wanted {
  secret: string;
  role: string;
  name?: string;
  keySecret?: string;
  generateKey?: boolean;
  hosts: string[];
}

let scratch: string;
let api: SecretsApi;
let ca: PemPair;
let caDir: string;

/** Runs the chart's renewer once, as the Job would, and returns its exit code and output. */
async function renew(wanted: Wanted[], settings: { validityDays: number; renewBeforeDays: number; caDir?: string }): Promise<{ code: number | null; output: string }> {
  const result = await runProcess(process.execPath, [renewScript], {
    timeoutMs: 60_000,
    env: {
      RENEW_API_URL: api.url,
      RENEW_NAMESPACE: namespace,
      RENEW_NETWORK_ID: "testnet",
      RENEW_CA_DIR: settings.caDir ?? caDir,
      RENEW_VALIDITY_DAYS: String(settings.validityDays),
      RENEW_BEFORE_DAYS: String(settings.renewBeforeDays),
      RENEW_TLS_MODULE: path.join(repo, "packages/tls"),
      RENEW_LABELS: JSON.stringify({ "app.kubernetes.io/instance": "test" }),
      RENEW_CERTIFICATES: JSON.stringify(wanted),
    },
  });
  return { code: result.code, output: result.stdout + result.stderr };
}

function writeCaDir(dir: string, authority: PemPair): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tls.crt"), authority.certPem);
  fs.writeFileSync(path.join(dir, "tls.key"), authority.keyPem, { mode: 0o600 });
  return dir;
}

beforeAll(async () => {
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-renewal-")));
  api = new SecretsApi();
  await api.start();
  ca = createCertificateAuthority({ networkId: "testnet" });
  caDir = writeCaDir(path.join(scratch, "ca"), ca);
});

afterAll(async () => {
  await api?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe("the chart's certificate renewer", () => {
  const router: Wanted = { secret: "r-shard-router-tls", role: "shard-router", name: "shard-router", hosts: ["localhost", "127.0.0.1", "r-shard-router.mycelium.svc"] };
  const node: Wanted = { secret: "r-validator-0-tls", role: "node-agent", keySecret: "r-validator-key-0", generateKey: true, hosts: ["r-validator-0.r-node-agent"] };

  test("issues what is missing, creates a node key pair once, and keeps what is current", async () => {
    const first = await renew([router, node], { validityDays: 1, renewBeforeDays: 0.5 });
    expect([first.code, first.output]).toEqual([0, expect.stringContaining("renew: 2 current, 0 failed")]);
    expect(first.output).toMatch(/created node key pair r-validator-key-0/);
    const nodeKey = api.text("r-validator-key-0", "public-key");
    const nodeCertificate = new X509Certificate(api.text("r-validator-0-tls", "tls.crt"));
    expect(nodeCertificate.subjectAltName).toMatch(/URI:spiffe:\/\/testnet\/node-agent\/n[0-9a-f]{20}/);
    expect(api.secrets.get("r-shard-router-tls")!.type).toBe("kubernetes.io/tls");
    expect(api.text("r-shard-router-tls", "ca.crt").trim()).toBe(ca.certPem.trim());

    const second = await renew([router, node], { validityDays: 1, renewBeforeDays: 0.5 });
    expect(second.code).toBe(0);
    expect(second.output).toMatch(/kept r-shard-router-tls/);
    expect(second.output).toMatch(/kept r-validator-0-tls/);
    expect(api.text("r-validator-key-0", "public-key")).toBe(nodeKey);
    // Only Secrets, only by name.
    expect(api.requests.every((line) => line.startsWith(`GET /api/v1/namespaces/${namespace}/secrets/`) || line.startsWith("POST ") || line.startsWith("PUT "))).toBe(true);
  });

  test("reissues when the names change, when the CA bundle changes, and when the expiry comes within renewBefore", async () => {
    const serial = () => new X509Certificate(api.text("r-shard-router-tls", "tls.crt")).serialNumber;
    const before = serial();
    const moreNames = await renew([{ ...router, hosts: [...router.hosts, "sql.example.com"] }], { validityDays: 1, renewBeforeDays: 0.5 });
    expect(moreNames.output).toMatch(/issued r-shard-router-tls: .*DNS names or addresses changed/);
    expect(serial()).not.toBe(before);

    const second = createCertificateAuthority({ networkId: "testnet" });
    const bundleDir = path.join(scratch, "ca-bundle");
    writeCaDir(bundleDir, ca);
    fs.writeFileSync(path.join(bundleDir, "tls.crt"), ca.certPem + second.certPem);
    const bundle = await renew([router], { validityDays: 1, renewBeforeDays: 0.5, caDir: bundleDir });
    expect(bundle.output).toMatch(/issued r-shard-router-tls: .*CA bundle changed/);
    expect(api.text("r-shard-router-tls", "ca.crt")).toContain(second.certPem.trim());

    const due = await renew([router], { validityDays: 3, renewBeforeDays: 2, caDir: bundleDir });
    expect(due.output).toMatch(/issued r-shard-router-tls: .*within 2 days/);
  });

  test("waits for an operator's node key Secret instead of inventing one, and says which", async () => {
    const result = await renew([{ ...node, secret: "r-miner-0-tls", keySecret: "r-miner-key-0", generateKey: false }], { validityDays: 1, renewBeforeDays: 0.5 });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/r-miner-0-tls: waiting for Secret r-miner-key-0 with keys public-key and private-key/);
    expect(api.secrets.has("r-miner-key-0")).toBe(false);
  });
});

describe("a running service and a renewed certificate", () => {
  const hosts = ["localhost", "127.0.0.1"];
  let volume: string;
  let service: ChildProcess;
  let grpcPort: number;
  let opsPort: number;
  let log = "";
  let generation = 0;

  /** Writes files into the volume as the kubelet updates a Secret volume: a new directory, then one link swap. */
  function project(files: Record<string, string>): void {
    const dir = path.join(volume, `..${Date.now()}_${generation++}`);
    fs.mkdirSync(dir);
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    const link = path.join(volume, "..data_tmp");
    fs.symlinkSync(path.basename(dir), link);
    fs.renameSync(link, path.join(volume, "..data"));
    for (const name of Object.keys(files)) {
      if (!fs.existsSync(path.join(volume, name))) fs.symlinkSync(path.join("..data", name), path.join(volume, name));
    }
  }

  function projectSecret(name: string): X509Certificate {
    project({ "tls.crt": api.text(name, "tls.crt"), "tls.key": api.text(name, "tls.key"), "ca.crt": api.text(name, "ca.crt") });
    return new X509Certificate(api.text(name, "tls.crt"));
  }

  async function get(pathname: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.get({ host: "127.0.0.1", port: opsPort, path: pathname, timeout: 5000 }, (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on("error", reject);
      request.on("timeout", () => request.destroy(new Error("no answer in 5 s")));
    });
  }

  async function expiryGauge(): Promise<number> {
    const { body } = await get("/metrics");
    const line = body.split("\n").find((l) => l.startsWith("mycelium_tls_certificate_expiry_seconds"));
    if (!line) throw new Error("no mycelium_tls_certificate_expiry_seconds on /metrics");
    return Number(line.split(" ").at(-1));
  }

  /** The serial of the certificate the service presents to a new mTLS handshake. */
  function presentedSerial(client: PemPair): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tlsSocket.connect({ host: "127.0.0.1", port: grpcPort, ca: ca.certPem, cert: client.certPem, key: client.keyPem, servername: "localhost", ALPNProtocols: ["h2"] }, () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial.toUpperCase());
      });
      socket.setTimeout(5000, () => socket.destroy(new Error("no handshake in 5 s")));
      socket.on("error", reject);
    });
  }

  beforeAll(async () => {
    volume = path.join(scratch, "shard-router-tls");
    fs.mkdirSync(volume);
    grpcPort = await freePort("127.0.0.1");
    opsPort = await freePort("127.0.0.1");
  });

  afterAll(async () => {
    if (service) await stopProcess(service, 10_000);
  });

  test("takes the renewed certificate without a restart, and the expiry gauge moves", async () => {
    const wanted: Wanted = { secret: "s-shard-router-tls", role: "shard-router", name: "shard-router", hosts };
    expect((await renew([wanted], { validityDays: 1, renewBeforeDays: 0.5 })).code).toBe(0);
    const first = projectSecret("s-shard-router-tls");
    service = spawn(process.execPath, [path.join(repo, "services/shard-router/dist/main.js")], {
      env: {
        PATH: process.env.PATH ?? "",
        MYCELIUM_HOST: "127.0.0.1",
        MYCELIUM_PORT: String(grpcPort),
        MYCELIUM_METRICS_PORT: String(opsPort),
        MYCELIUM_NETWORK_ID: "testnet",
        MYCELIUM_CONTROL_STORE_URL: `sqlite:${path.join(scratch, "control.db")}`,
        MYCELIUM_TLS_CERT_PATH: path.join(volume, "tls.crt"),
        MYCELIUM_TLS_KEY_PATH: path.join(volume, "tls.key"),
        MYCELIUM_TLS_CA_PATH: path.join(volume, "ca.crt"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    service.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
    service.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
    await eventually(async () => expect((await get("/readyz")).status).toBe(200), { timeoutMs: 60_000, intervalMs: 250 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${log}`);
    });
    const client = issueCertificate(ca, { networkId: "testnet", role: "admin", name: "ops", hosts: [] });
    expect(await expiryGauge()).toBe(new Date(first.validTo).getTime() / 1000);
    expect(await presentedSerial(client)).toBe(first.serialNumber);

    // The CronJob's next run finds the certificate due (renewBefore now longer than what is left) and renews it.
    const renewed = await renew([wanted], { validityDays: 3, renewBeforeDays: 2 });
    expect(renewed.output).toMatch(/issued s-shard-router-tls/);
    const second = projectSecret("s-shard-router-tls");
    expect(second.serialNumber).not.toBe(first.serialNumber);

    await eventually(async () => expect(await expiryGauge()).toBe(new Date(second.validTo).getTime() / 1000), { timeoutMs: 60_000, intervalMs: 500 });
    expect(await expiryGauge()).toBeGreaterThan(new Date(first.validTo).getTime() / 1000);
    await eventually(async () => expect(await presentedSerial(client)).toBe(second.serialNumber), { timeoutMs: 30_000, intervalMs: 500 });
    expect([service.exitCode, service.signalCode]).toEqual([null, null]);
    expect((await get("/readyz")).status).toBe(200);
  });

  test("readiness fails once the serving certificate has expired, and recovers when a renewed one is loaded", async () => {
    // A certificate that lives 20 seconds and is never renewed in time.
    const shortLived = issueCertificate(ca, { networkId: "testnet", role: "shard-router", name: "shard-router", hosts, validityDays: 20 / 86_400 });
    const expiresAt = new Date(new X509Certificate(shortLived.certPem).validTo).getTime() / 1000;
    project({ "tls.crt": shortLived.certPem, "tls.key": shortLived.keyPem, "ca.crt": ca.certPem });
    await eventually(async () => expect(await expiryGauge()).toBe(expiresAt), { timeoutMs: 60_000, intervalMs: 500 });
    const notReady = await eventually(
      async () => {
        const answer = await get("/readyz");
        expect(answer.status).toBe(503);
        return answer.body;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(notReady).toMatch(/serving certificate spiffe:\/\/testnet\/shard-router\/shard-router .* expired at/);
    expect(await expiryGauge()).toBeLessThan(Date.now() / 1000);

    const renewed = await renew([{ secret: "s-shard-router-tls", role: "shard-router", name: "shard-router", hosts }], { validityDays: 3, renewBeforeDays: 2.9 });
    expect(renewed.code).toBe(0);
    projectSecret("s-shard-router-tls");
    await eventually(async () => expect((await get("/readyz")).status).toBe(200), { timeoutMs: 60_000, intervalMs: 500 });
    expect([service.exitCode, service.signalCode]).toEqual([null, null]);
  });
});
