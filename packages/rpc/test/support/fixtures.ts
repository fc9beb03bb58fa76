import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { coordinator, replicator } from "@mycelium/proto";
import { createTelemetry, InMemorySpanExporter, type Telemetry } from "@mycelium/telemetry";
import { initCertificateDirectory, issueToDirectory, type Role, type TlsPaths } from "@mycelium/tls";
import {
  authorize,
  ClientPool,
  MyceliumServer,
  type AuthorizationTable,
  type CallContext,
  type ClientPoolOptions,
  type ServerOptions,
} from "@mycelium/rpc";

export const networkId = "net-a";
export const minProtocolVersion = "1.2.0";

/**
 * The unary method and the server-streaming method the tests serve: one method of each real service
 * (a definition may hold any subset of a service's methods), so methods added later need no handlers here.
 */
export const unaryService = { getStatus: replicator.ReplicatorServiceService.getStatus };
export const streamService = { subscribe: coordinator.TransactionServiceService.subscribe };
export type StatusResponse = replicator.GetStatusResponse;
export type Event = coordinator.SubscribeResponse;

/** One CA and a few identities for every test in a file (RSA keys are slow to make). */
export class Certificates {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-rpc-test-"));
  private readonly issued = new Map<string, TlsPaths>();

  constructor() {
    initCertificateDirectory(this.dir, networkId);
  }

  get(role: Role, name: string): TlsPaths {
    const key = `${role}/${name}`;
    let paths = this.issued.get(key);
    if (!paths) {
      paths = issueToDirectory(this.dir, { networkId, role, name });
      this.issued.set(key, paths);
    }
    return paths;
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function silentTelemetry(name: string, exporter?: InMemorySpanExporter, logLines?: string[]): Telemetry {
  return createTelemetry({
    serviceName: name,
    instanceId: name,
    logLevel: logLines ? "info" : "silent",
    processMetrics: false,
    ...(exporter ? { spanExporters: [exporter] } : {}),
    ...(logLines ? { logDestination: { write: (line: string) => void logLines.push(line) } } : {}),
  });
}

/** coordinator may call both methods; client may call only GetStatus. */
export function defaultTable(): AuthorizationTable {
  return {
    ...authorize(unaryService, { getStatus: ["coordinator", "client"] }),
    ...authorize(streamService, { subscribe: ["coordinator"] }),
  };
}

export interface Handlers {
  getStatus: (request: replicator.GetStatusRequest, call: CallContext) => Promise<StatusResponse>;
  subscribe: (request: coordinator.SubscribeRequest, call: CallContext) => AsyncIterable<Event>;
}

export function statusResponse(replicatorId: string): StatusResponse {
  return replicator.GetStatusResponse.create({ replicatorId, ownedShardIds: [] });
}

export function event(sequence: number, txId = "tx"): Event {
  return coordinator.SubscribeResponse.create({
    event: { $case: "completed", value: { txId, success: true, durationMs: sequence } },
    sequence,
    atMs: 0,
  });
}

/** Servers and pools made by a test, closed after it. */
export class Harness {
  private readonly servers: MyceliumServer[] = [];
  private readonly pools: ClientPool[] = [];
  handlers: Handlers = {
    getStatus: async (_request, call) => statusResponse(call.identity.uri),
    subscribe: async function* () {
      yield event(1);
    },
  };

  constructor(private readonly certificates: Certificates) {}

  async server(
    overrides: Partial<ServerOptions> = {},
    port = 0,
  ): Promise<{ server: MyceliumServer; address: string; telemetry: Telemetry }> {
    const telemetry = overrides.telemetry ?? silentTelemetry("server");
    const server = new MyceliumServer({
      serviceName: "test-server",
      telemetry,
      tls: this.certificates.get("replicator", "server"),
      networkId,
      minProtocolVersion,
      authorization: defaultTable(),
      ...overrides,
    });
    this.servers.push(server);
    server.addService(unaryService, { getStatus: (request, call) => this.handlers.getStatus(request, call) });
    server.addService(streamService, { subscribe: (request, call) => this.handlers.subscribe(request, call) });
    const listening = await server.listen("127.0.0.1", port);
    return { server, address: `127.0.0.1:${listening.port}`, telemetry };
  }

  pool(overrides: Partial<ClientPoolOptions> & { role?: Role } = {}): { pool: ClientPool; telemetry: Telemetry } {
    const { role = "coordinator", ...rest } = overrides;
    const telemetry = rest.telemetry ?? silentTelemetry("client");
    const pool = new ClientPool({
      telemetry,
      tls: this.certificates.get(role, `caller-${role}`),
      networkId,
      protocolVersion: "1.2.0",
      ...rest,
    });
    this.pools.push(pool);
    return { pool, telemetry };
  }

  async close(): Promise<void> {
    for (const pool of this.pools.splice(0)) pool.close();
    await Promise.all(this.servers.splice(0).map((server) => server.shutdown(200)));
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A promise that settles when `signal` aborts, with its reason. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

/** Waits until `check` holds; the bound only keeps a broken test from hanging. */
export async function until(check: () => boolean | Promise<boolean>, what: string, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sum of a metric's values whose labels include `labels`. */
export async function metricValue(telemetry: Telemetry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = telemetry.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected))
    .reduce((sum, value) => sum + value.value, 0);
}

/** A port nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, but it succeeded");
}
