import * as fs from "node:fs";
import { TLSSocket } from "node:tls";
import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { descriptorSetPath } from "@mycelium/proto";
import { identityFromCertificate, serverCredentials, type Identity, type TlsMaterial, type TlsPaths } from "@mycelium/tls";
import type { Logger, Telemetry } from "@mycelium/telemetry";
import { isAuthorized, type AuthorizationTable } from "./authorization";
import { shortMethodName, type MethodDefinition, type RequestOf, type ResponseOf, type ServiceDefinition } from "./definitions";
import { isMyceliumError, MyceliumError, toStatus } from "./errors";
import { compareVersions, networkIdKey, parseVersion, protocolVersionKey, type SemanticVersion } from "./protocol";
import { metadataGetter } from "./propagation";

export interface CallContext {
  /** Who is calling, from the client certificate's URI SAN. */
  identity: Identity;
  /** Full method path. */
  method: string;
  /** Absolute deadline (epoch ms); the client's, or the server's default when the client set none. */
  deadlineMs: number;
  /** Aborted when the client cancels, the deadline passes, or the server shuts down. */
  signal: AbortSignal;
  metadata: grpc.Metadata;
  /** Logger bound to this call (method and caller). */
  logger: Logger;
}

export type UnaryHandler<Req, Res> = (request: Req, call: CallContext) => Promise<Res>;
export type StreamHandler<Req, Res> = (request: Req, call: CallContext) => AsyncIterable<Res>;

/** Handlers for every method of a service: a promise for unary methods, an async iterable for streams. */
export type ServiceHandlers<D extends ServiceDefinition> = {
  [K in keyof D]: D[K]["responseStream"] extends true
    ? StreamHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
    : UnaryHandler<RequestOf<D[K]>, ResponseOf<D[K]>>;
};

export interface ServerOptions {
  /** Service name for logs, metrics and health (e.g. "shard-router"). */
  serviceName: string;
  telemetry: Telemetry;
  tls: TlsPaths;
  /** @default true — MYCELIUM_TLS_VERIFY_CLIENT. Without it no identity exists, so every call is refused. */
  requireClientCertificate?: boolean;
  networkId: string;
  /** Calls announcing a protocol version below this are refused. */
  minProtocolVersion: string;
  authorization: AuthorizationTable;
  /** Calls in flight at once; more are refused with RESOURCE_EXHAUSTED. @default 100 — MYCELIUM_CONNECTION_LIMIT */
  connectionLimit?: number;
  /** Deadline applied to calls that arrive without one. @default 60000 */
  defaultDeadlineMs?: number;
  /** Connections are closed (gracefully) after this age, so reloaded certificates take over. @default 1800000 */
  maxConnectionAgeMs?: number;
  /** Largest message accepted or sent. @default 16 MiB */
  maxMessageBytes?: number;
  /** How often certificate files are checked for changes. @default 5000 */
  certificateRefreshMs?: number;
}

export interface Listening {
  host: string;
  port: number;
}

const defaultMaxMessageBytes = 16 * 1024 * 1024;

/**
 * The gRPC server every Mycelium service runs: mutual TLS, then for every call, in order, the caller's
 * identity, its network id and protocol version, the method's allowed roles, the concurrency limit and
 * a deadline; errors leave as typed statuses; every call is traced, logged when it fails, and counted.
 * Health (grpc.health.v1) and reflection are served beside the services.
 */
export class MyceliumServer {
  private readonly server: grpc.Server;
  private readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly serviceNames: string[] = [];
  private readonly inFlight = new Set<AbortController>();
  private readonly credentials: ReturnType<typeof serverCredentials>;
  private readonly minVersion: SemanticVersion;
  private readonly log: Logger;
  private readonly metrics;
  private stopping = false;
  /**
   * Reading the peer certificate from the TLS socket costs more than the rest of admission, and a
   * connection's certificate never changes: remember the identity per socket.
   */
  private readonly identities = new WeakMap<object, Identity>();

  constructor(private readonly options: ServerOptions) {
    const minVersion = parseVersion(options.minProtocolVersion);
    if (!minVersion) throw new Error(`minimum protocol version ${options.minProtocolVersion} is not x.y.z`);
    this.minVersion = minVersion;
    this.log = options.telemetry.logger.child({ component: "rpc-server" });
    const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
    this.server = new grpc.Server({
      "grpc.max_connection_age_ms": options.maxConnectionAgeMs ?? 30 * 60 * 1000,
      "grpc.max_connection_age_grace_ms": 30_000,
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      "grpc.keepalive_time_ms": 60_000,
      "grpc.keepalive_timeout_ms": 20_000,
    });
    this.credentials = serverCredentials(options.tls, {
      requireClientCertificate: options.requireClientCertificate ?? true,
      ...(options.certificateRefreshMs ? { refreshIntervalMs: options.certificateRefreshMs } : {}),
    });
    const m = options.telemetry.metrics;
    this.metrics = {
      requests: m.counter({
        name: "mycelium_rpc_server_requests_total",
        help: "Calls handled, by method and status code.",
        labelNames: ["method", "code"] as const,
      }),
      duration: m.histogram({
        name: "mycelium_rpc_server_duration_seconds",
        help: "Time to handle a call, by method.",
        labelNames: ["method"] as const,
      }),
      inFlight: m.gauge({ name: "mycelium_rpc_server_in_flight", help: "Calls being handled now." }),
      denied: m.counter({
        name: "mycelium_rpc_server_denied_total",
        help: "Calls refused before reaching a handler, by reason.",
        labelNames: ["reason"] as const,
      }),
    };
    this.health.addToServer(this.server);
    this.addReflection();
  }

  addService<D extends ServiceDefinition>(definition: D, handlers: ServiceHandlers<D>): this {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(definition)) {
      const method = definition[name] as MethodDefinition<unknown, unknown>;
      const handler = handlers[name as keyof D] as unknown;
      if (typeof handler !== "function") throw new Error(`no handler for ${method.path}`);
      if (method.requestStream) throw new Error(`client streaming is not supported (${method.path})`);
      implementation[name] = method.responseStream
        ? this.wrapStream(method, handler as StreamHandler<unknown, unknown>)
        : this.wrapUnary(method, handler as UnaryHandler<unknown, unknown>);
    }
    this.server.addService(definition as unknown as grpc.ServiceDefinition, implementation);
    const first = Object.values(definition)[0];
    if (first) this.serviceNames.push(first.path.split("/")[1] ?? "");
    return this;
  }

  /** Bind one address; may be called more than once (e.g. the main and the P2P port). */
  listen(host: string, port: number): Promise<Listening> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, this.credentials.credentials, (error, boundPort) => {
        if (error) {
          reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`));
          return;
        }
        resolve({ host, port: boundPort });
      });
    });
  }

  /** Report SERVING for every service (after the service finished starting up). */
  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", status);
    for (const name of this.serviceNames) this.health.setStatus(name, status);
  }

  /** The certificate, key and CA this server presents and trusts now (they reload from disk). */
  get tlsMaterial(): TlsMaterial {
    return this.credentials.material;
  }

  get callsInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * Stop taking calls, let calls in flight finish for up to `graceMs`, then cut the rest. Streams are
   * told to end at once (a subscription would otherwise hold shutdown open forever).
   */
  async shutdown(graceMs = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.setServing(false);
    for (const controller of this.inFlight) {
      if ((controller as AbortController & { streaming?: boolean }).streaming) controller.abort(shutdownError());
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const controller of this.inFlight) controller.abort(shutdownError());
    this.credentials.close();
  }

  private addReflection(): void {
    // Our files as buf compiled them (fully-qualified type names), not as proto-loader re-encodes
    // them: generic clients such as grpcurl cannot resolve the relative names of the latter.
    const ours = { mycelium: { fileDescriptorProtos: fileDescriptorProtos(fs.readFileSync(descriptorSetPath)) } };
    const health = protoLoader.loadSync(healthProtoPath);
    new ReflectionService({ ...health, ...ours } as unknown as protoLoader.PackageDefinition).addToServer(this.server);
  }

  private wrapUnary(method: MethodDefinition<unknown, unknown>, handler: UnaryHandler<unknown, unknown>) {
    return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void this.run(call, method, false, async (ctx) => handler(call.request, ctx)).then(
        (response) => callback(null, response),
        (status: Partial<grpc.StatusObject>) => callback(status as grpc.ServerErrorResponse),
      );
    };
  }

  private wrapStream(method: MethodDefinition<unknown, unknown>, handler: StreamHandler<unknown, unknown>) {
    return (call: grpc.ServerWritableStream<unknown, unknown>) => {
      void this.run(call, method, true, async (ctx) => {
        for await (const message of handler(call.request, ctx)) {
          if (ctx.signal.aborted) break;
          if (!call.write(message)) {
            // Respect backpressure: a slow subscriber slows its own stream, not the server's memory.
            await new Promise<void>((resolve) => {
              const done = () => {
                call.off("drain", done);
                ctx.signal.removeEventListener("abort", done);
                resolve();
              };
              call.on("drain", done);
              ctx.signal.addEventListener("abort", done, { once: true });
            });
          }
        }
        // Cut off (deadline, shutdown) is not a normal end: say so, so the subscriber knows to come back.
        if (ctx.signal.aborted) throw ctx.signal.reason;
        return undefined;
      }).then(
        () => call.end(),
        (status: Partial<grpc.StatusObject>) => call.emit("error", status),
      );
    };
  }

  /** Everything around a handler; resolves with its result or rejects with a gRPC status. */
  private async run<T>(
    call: ServerSurfaceCall,
    method: MethodDefinition<unknown, unknown>,
    streaming: boolean,
    body: (ctx: CallContext) => Promise<T>,
  ): Promise<T> {
    const name = shortMethodName(method.path);
    const started = process.hrtime.bigint();
    const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
    const span = this.options.telemetry.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.method": method.path } }, parent);
    const controller = new AbortController() as AbortController & { streaming?: boolean };
    controller.streaming = streaming;
    let code = "OK";
    try {
      return await context.with(trace.setSpan(parent, span), async () => {
        const identity = this.admit(call, method.path, span);
        const clientDeadline = call.getDeadline();
        const deadlineMs = deadlineToMs(clientDeadline) ?? Date.now() + (this.options.defaultDeadlineMs ?? 60_000);
        const timer = setTimeout(() => controller.abort(new MyceliumError("DEADLINE_EXCEEDED", `${name} passed its deadline`)), Math.max(0, deadlineMs - Date.now()));
        const onCancel = () => controller.abort(new MyceliumError("CANCELLED", `${name} was cancelled by the caller`));
        call.on("cancelled", onCancel);
        this.inFlight.add(controller);
        this.metrics.inFlight.set(this.inFlight.size);
        try {
          const log = this.log;
          let logger: Logger | null = null;
          return await body({
            identity,
            method: method.path,
            deadlineMs,
            signal: controller.signal,
            metadata: call.metadata,
            get logger() {
              logger ??= log.child({ method: name, caller: identity.uri });
              return logger;
            },
          });
        } finally {
          clearTimeout(timer);
          call.off("cancelled", onCancel);
          this.inFlight.delete(controller);
          this.metrics.inFlight.set(this.inFlight.size);
        }
      });
    } catch (error) {
      const typed = this.toTypedError(error, name);
      code = typed.code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: typed.message });
      if (typed.reason) span.setAttribute("mycelium.error.reason", typed.reason);
      throw toStatus(typed);
    } finally {
      span.setAttribute("rpc.grpc.status_code", code);
      span.end();
      this.metrics.requests.inc({ method: name, code });
      this.metrics.duration.observe({ method: name }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** Identity, network, protocol version, role and capacity checks, in that order. */
  private admit(call: ServerSurfaceCall, methodPath: string, span: Span): Identity {
    const name = shortMethodName(methodPath);
    const deny = (reason: string, error: MyceliumError): never => {
      this.metrics.denied.inc({ reason });
      this.log.warn({ method: name, peer: call.getPeer(), reason, err: error.message }, "call refused");
      throw error;
    };
    if (this.stopping) {
      throw new MyceliumError("UNAVAILABLE", `${this.options.serviceName} is shutting down; retry on another replica`, { reason: "SHUTTING_DOWN" });
    }
    const socket = peerSocket(call);
    let identity = socket ? this.identities.get(socket) : undefined;
    if (!identity) {
      const certificate = call.getAuthContext()?.sslPeerCertificate;
      if (!certificate || !certificate.raw) {
        return deny("no_certificate", new MyceliumError("UNAUTHENTICATED", "a client certificate issued by the cluster CA is required"));
      }
      try {
        identity = identityFromCertificate(certificate);
      } catch (error) {
        return deny("bad_identity", new MyceliumError("UNAUTHENTICATED", `the client certificate carries no valid Mycelium identity: ${(error as Error).message}`));
      }
      if (socket) this.identities.set(socket, identity);
    }
    span.setAttribute("mycelium.caller", identity.uri);
    if (identity.networkId !== this.options.networkId) {
      return deny("wrong_network", new MyceliumError("PERMISSION_DENIED", `certificate identity ${identity.uri} belongs to network "${identity.networkId}", this server is on network "${this.options.networkId}"`));
    }
    const networkId = String(call.metadata.get(networkIdKey)[0] ?? "");
    if (networkId !== this.options.networkId) {
      return deny("wrong_network", new MyceliumError(
        "FAILED_PRECONDITION",
        networkId
          ? `caller is on network "${networkId}" but this server is on network "${this.options.networkId}"; check MYCELIUM_NETWORK_ID`
          : `missing ${networkIdKey} metadata; this server is on network "${this.options.networkId}"`,
        { reason: "WRONG_NETWORK", details: { expected: this.options.networkId, received: networkId } },
      ));
    }
    const versionText = String(call.metadata.get(protocolVersionKey)[0] ?? "");
    const version = parseVersion(versionText);
    if (!version || compareVersions(version, this.minVersion) < 0) {
      return deny("old_protocol", new MyceliumError(
        "FAILED_PRECONDITION",
        version
          ? `caller speaks protocol ${versionText}, below this server's minimum ${this.options.minProtocolVersion}; upgrade the caller`
          : `missing or malformed ${protocolVersionKey} metadata ("${versionText}"); this server needs at least ${this.options.minProtocolVersion}`,
        { reason: "PROTOCOL_VERSION", details: { minimum: this.options.minProtocolVersion, received: versionText } },
      ));
    }
    if (!isAuthorized(this.options.authorization, methodPath, identity.role)) {
      return deny("role", new MyceliumError("PERMISSION_DENIED", `${identity.role} "${identity.name}" may not call ${name}`, { reason: "ROLE" }));
    }
    const limit = this.options.connectionLimit ?? 100;
    if (this.inFlight.size >= limit) {
      return deny("limit", new MyceliumError("RESOURCE_EXHAUSTED", `${this.options.serviceName} is handling ${limit} calls (MYCELIUM_CONNECTION_LIMIT); retry with backoff`, { reason: "CONNECTION_LIMIT" }));
    }
    return identity;
  }

  private toTypedError(error: unknown, name: string): MyceliumError {
    if (isMyceliumError(error)) return error;
    const reference = Math.random().toString(36).slice(2, 10);
    this.log.error({ err: error, method: name, reference }, "unexpected error in handler");
    return new MyceliumError("INTERNAL", `internal error in ${name} (reference ${reference}; details in the ${this.options.serviceName} log)`);
  }
}

/**
 * The TLS socket under a call, for caching per connection. This reaches into grpc-js internals
 * (call → interceptors → HTTP/2 stream → session → socket); if they change, there is simply no cache.
 */
function peerSocket(call: ServerSurfaceCall): object | undefined {
  try {
    type Layer = { nextCall?: Layer; stream?: { session?: { socket?: unknown } } };
    let layer = (call as unknown as { call?: Layer }).call;
    // Interceptors wrap the base call; with none configured the base call comes directly.
    for (let depth = 0; layer && !layer.stream && depth < 8; depth++) layer = layer.nextCall;
    const socket = layer?.stream?.session?.socket;
    return socket instanceof TLSSocket && socket.authorized ? socket : undefined;
  } catch {
    return undefined;
  }
}

/** The FileDescriptorProtos (still encoded) of a FileDescriptorSet: its repeated field 1. */
function fileDescriptorProtos(set: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(set);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) files.push(reader.bytes());
    else reader.skip(wireType);
  }
  return files;
}

function deadlineToMs(deadline: grpc.Deadline): number | null {
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : null;
}

function shutdownError(): MyceliumError {
  return new MyceliumError("UNAVAILABLE", "server is shutting down", { reason: "SHUTTING_DOWN" });
}
