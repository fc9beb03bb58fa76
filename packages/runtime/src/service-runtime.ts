import type { MyceliumConfig } from "@mycelium/config";
import { ClientPool, MyceliumServer, type AuthorizationTable } from "@mycelium/rpc";
import { createTelemetry, startOpsServer, type Logger, type OpsServer, type SpanExporter, type Telemetry } from "@mycelium/telemetry";
import { certificateExpiryProblem, certificateExpirySeconds, type TlsPaths } from "@mycelium/tls";

export type ServiceRole = "coordinator" | "shard-router" | "replicator" | "node-agent";

export interface RuntimeOptions {
  role: ServiceRole;
  config: MyceliumConfig;
  authorization: AuthorizationTable;
  /** Instance name for logs and traces; defaults to MYCELIUM_NAME. */
  instanceId?: string;
  /** Tests pass in-memory exporters; processes use MYCELIUM_TRACE_FILE and OTEL_* instead. */
  spanExporters?: SpanExporter[];
  /** Export traces over OTLP (main.ts decides from the standard OTEL_* variables). */
  otlp?: boolean;
  /** Process metrics (off when several services share a test process). @default true */
  processMetrics?: boolean;
  /** Ops endpoint port instead of MYCELIUM_METRICS_PORT (tests use 0 for a free port). */
  opsPort?: number;
}

/**
 * The parts every service has: telemetry, one mTLS gRPC server, a pool of clients to peers, the
 * plain-HTTP ops endpoint, and an ordered list of things to stop. Services add their handlers and
 * loops, then call `start()`.
 */
export class ServiceRuntime {
  readonly telemetry: Telemetry;
  readonly server: MyceliumServer;
  readonly clients: ClientPool;
  readonly tls: TlsPaths;
  private ops: OpsServer | null = null;
  private readonly stopHooks: Array<{ name: string; stop: () => Promise<void> | void }> = [];
  private readyReason: string | null = "starting";
  private boundPort = 0;
  private stopped: Promise<void> | null = null;

  constructor(readonly options: RuntimeOptions) {
    const { config } = options;
    const security = config.security;
    if (!security.tlsCertPath || !security.tlsKeyPath || !security.tlsCaPath) {
      throw new Error("MYCELIUM_TLS_CERT_PATH, MYCELIUM_TLS_KEY_PATH and MYCELIUM_TLS_CA_PATH are required");
    }
    this.tls = { certPath: security.tlsCertPath, keyPath: security.tlsKeyPath, caPath: security.tlsCaPath };
    const instanceId = options.instanceId ?? config.cluster.serviceName ?? options.role;
    this.telemetry = createTelemetry({
      serviceName: options.role,
      instanceId,
      logLevel: config.cluster.logLevel,
      ...(config.cluster.traceFile ? { traceFile: config.cluster.traceFile } : {}),
      otlp: options.otlp ?? false,
      ...(options.spanExporters ? { spanExporters: options.spanExporters } : {}),
      processMetrics: options.processMetrics ?? true,
    });
    this.server = new MyceliumServer({
      serviceName: options.role,
      telemetry: this.telemetry,
      tls: this.tls,
      requireClientCertificate: security.tlsVerifyClient,
      networkId: config.network.networkId,
      minProtocolVersion: config.network.minProtocolVersion,
      authorization: options.authorization,
      connectionLimit: config.performance.connectionLimit,
    });
    const server = this.server;
    this.telemetry.metrics.gauge({
      name: "mycelium_tls_certificate_expiry_seconds",
      help: "Unix time (seconds) at which the serving certificate expires; it moves forward when a renewed certificate is loaded.",
      collect() {
        this.set(certificateExpirySeconds(server.tlsMaterial));
      },
    });
    this.clients = new ClientPool({
      telemetry: this.telemetry,
      tls: this.tls,
      verifyHostname: security.tlsVerifyHostname,
      networkId: config.network.networkId,
      protocolVersion: config.network.protocolVersion,
      maxPeers: config.performance.maxPeers,
      keepaliveMs: config.performance.pingIntervalMs,
      idleTimeoutMs: config.performance.connectionTimeoutMs,
    });
  }

  get logger(): Logger {
    return this.telemetry.logger;
  }

  get config(): MyceliumConfig {
    return this.options.config;
  }

  /** The port the gRPC server is bound to (after start). */
  get port(): number {
    return this.boundPort;
  }

  /** The address peers should use: MYCELIUM_ADVERTISE_ADDRESS, else 127.0.0.1 and the bound port. */
  get advertiseAddress(): string {
    return this.config.cluster.advertiseAddress ?? `127.0.0.1:${this.boundPort}`;
  }

  /** Register something to stop on shutdown; hooks run in reverse order of registration. */
  onStop(name: string, stop: () => Promise<void> | void): void {
    this.stopHooks.push({ name, stop });
  }

  /** Bind the gRPC port and the ops port. Serving is reported once `setReady()` is called. */
  async listen(): Promise<void> {
    const { network, cluster } = this.config;
    const listening = await this.server.listen(network.host, network.port);
    this.boundPort = listening.port;
    const opsPort = this.options.opsPort ?? cluster.metricsPort;
    // MYCELIUM_METRICS_PORT=0 disables the endpoint; an explicit opsPort of 0 (tests) picks a free port.
    if (this.options.opsPort !== undefined || opsPort !== 0) {
      this.ops = await startOpsServer({
        host: network.host,
        port: opsPort,
        metrics: this.telemetry.metrics,
        // An expired certificate is refused by every peer: not ready, whatever the service itself says.
        notReadyReason: () => this.readyReason ?? certificateExpiryProblem(this.server.tlsMaterial),
      });
    }
    this.telemetry.logger.info({ port: this.boundPort, opsPort: this.ops?.port ?? null, advertise: this.advertiseAddress }, "listening");
  }

  get opsPort(): number | null {
    return this.ops?.port ?? null;
  }

  setReady(): void {
    this.readyReason = null;
    this.server.setServing(true);
    this.telemetry.logger.info({ port: this.boundPort }, "ready");
  }

  setNotReady(reason: string): void {
    this.readyReason = reason;
    this.server.setServing(false);
  }

  /** Stop everything in order: loops and stores first (reverse registration), then the server, then telemetry. */
  stop(graceMs = 5000): Promise<void> {
    this.stopped ??= (async () => {
      this.setNotReady("stopping");
      await this.server.shutdown(graceMs);
      for (const hook of [...this.stopHooks].reverse()) {
        try {
          await hook.stop();
        } catch (error) {
          this.telemetry.logger.error({ err: error, hook: hook.name }, "error while stopping");
        }
      }
      this.clients.close();
      await this.ops?.close();
      this.telemetry.logger.info("stopped");
      await this.telemetry.shutdown();
    })();
    return this.stopped;
  }
}
