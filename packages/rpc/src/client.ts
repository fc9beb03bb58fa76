import * as grpc from "@grpc/grpc-js";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { channelCredentials, type TlsPaths } from "@mycelium/tls";
import type { Telemetry } from "@mycelium/telemetry";
import { backoffDelayMs, defaultBackoff, sleep, type BackoffPolicy } from "./backoff";
import { shortMethodName, type MethodDefinition, type RequestOf, type ResponseOf, type ServiceDefinition } from "./definitions";
import { fromServiceError, isMyceliumError, MyceliumError } from "./errors";
import { networkIdKey, protocolVersionKey } from "./protocol";
import { metadataSetter } from "./propagation";

export interface CallOptions {
  /** Time allowed for the whole call, retries included. @default the pool's defaultDeadlineMs */
  deadlineMs?: number;
  /**
   * Safe to send again (reads, and writes made idempotent by an id). Only idempotent calls are retried,
   * and only on UNAVAILABLE and RESOURCE_EXHAUSTED. @default false
   */
  idempotent?: boolean;
  /** Overrides the pool's retry policy for this call. */
  backoff?: Partial<BackoffPolicy>;
  signal?: AbortSignal;
}

export interface StreamOptions {
  /** Streams are long-lived; they end at this deadline if set. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export type PromiseClient<D extends ServiceDefinition> = {
  [K in keyof D]: D[K]["responseStream"] extends true
    ? (request: RequestOf<D[K]>, options?: StreamOptions) => AsyncIterable<ResponseOf<D[K]>>
    : (request: RequestOf<D[K]>, options?: CallOptions) => Promise<ResponseOf<D[K]>>;
};

export interface ClientPoolOptions {
  telemetry: Telemetry;
  tls: TlsPaths;
  /** @default true — MYCELIUM_TLS_VERIFY_HOSTNAME */
  verifyHostname?: boolean;
  networkId: string;
  protocolVersion: string;
  /** Most peers with an open channel; the least recently used is closed beyond it. @default 50 — MYCELIUM_MAX_PEERS */
  maxPeers?: number;
  /** @default 10000 */
  defaultDeadlineMs?: number;
  /** A channel unused this long is closed (reopened on the next call). @default 30000 — MYCELIUM_CONNECTION_TIMEOUT */
  idleTimeoutMs?: number;
  /** Retry policy for idempotent calls. @default defaultBackoff */
  backoff?: BackoffPolicy;
  /** @default 30000 — MYCELIUM_PING_INTERVAL */
  keepaliveMs?: number;
  /** @default 16 MiB */
  maxMessageBytes?: number;
  certificateRefreshMs?: number;
}

/**
 * Channels to peers, one per address, shared by every service client at that address, bounded by
 * maxPeers. Every call carries the network id, protocol version and trace context, has a deadline,
 * and fails with a MyceliumError.
 */
export class ClientPool {
  private readonly channels = new Map<string, grpc.Client>();
  private readonly credentials: ReturnType<typeof channelCredentials>;
  private readonly metrics;
  private closed = false;

  constructor(private readonly options: ClientPoolOptions) {
    this.credentials = channelCredentials(options.tls, {
      verifyHostname: options.verifyHostname ?? true,
      ...(options.certificateRefreshMs ? { refreshIntervalMs: options.certificateRefreshMs } : {}),
    });
    const m = options.telemetry.metrics;
    this.metrics = {
      requests: m.counter({ name: "mycelium_rpc_client_requests_total", help: "Calls made, by method and status code.", labelNames: ["method", "code"] as const }),
      retries: m.counter({ name: "mycelium_rpc_client_retries_total", help: "Retries of idempotent calls, by method.", labelNames: ["method"] as const }),
      duration: m.histogram({ name: "mycelium_rpc_client_duration_seconds", help: "Time of calls including retries, by method.", labelNames: ["method"] as const }),
      channels: m.gauge({ name: "mycelium_connections_active", help: "Open channels to peers." }),
      evictions: m.counter({ name: "mycelium_connections_evicted_total", help: "Channels closed because MYCELIUM_MAX_PEERS was reached." }),
    };
  }

  /** A promise-returning client for one service at one address. */
  service<D extends ServiceDefinition>(definition: D, address: string): PromiseClient<D> {
    const client = {} as Record<string, unknown>;
    for (const name of Object.keys(definition)) {
      const method = definition[name] as MethodDefinition<unknown, unknown>;
      client[name] = method.responseStream
        ? (request: unknown, options?: StreamOptions) => this.stream(address, method, request, options)
        : (request: unknown, options?: CallOptions) => this.unary(address, method, request, options);
    }
    return client as PromiseClient<D>;
  }

  async unary<Req, Res>(address: string, method: MethodDefinition<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
    const name = shortMethodName(method.path);
    const started = process.hrtime.bigint();
    const deadline = Date.now() + (options.deadlineMs ?? this.options.defaultDeadlineMs ?? 10_000);
    const policy = { ...(this.options.backoff ?? defaultBackoff), ...options.backoff };
    const maxAttempts = options.idempotent ? Math.max(1, policy.maxAttempts) : 1;
    const span = this.options.telemetry.tracer.startSpan(name, {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": "grpc", "rpc.method": method.path, "server.address": address },
    });
    const spanContext = trace.setSpan(context.active(), span);
    let code = "OK";
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await context.with(spanContext, () => this.attempt(address, method, request, deadline, options.signal));
        } catch (error) {
          const typed = error as MyceliumError;
          // A channel that could not connect waits out its reconnect backoff and fails every call
          // meanwhile with the old error, even after the peer is back (a restarted node): start afresh.
          if (neverConnected(typed)) this.forget(address);
          const retryable = typed.code === "UNAVAILABLE" || typed.code === "RESOURCE_EXHAUSTED";
          const delay = backoffDelayMs(policy, attempt);
          if (!retryable || attempt >= maxAttempts || Date.now() + delay >= deadline || options.signal?.aborted) throw typed;
          this.metrics.retries.inc({ method: name });
          span.addEvent("retry", { attempt, delayMs: delay, code: typed.code });
          await sleep(delay, options.signal);
        }
      }
    } catch (error) {
      const typed = isMyceliumError(error) ? error : new MyceliumError("CANCELLED", `${name} to ${address}: ${String(error)}`);
      code = typed.code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: typed.message });
      throw typed;
    } finally {
      span.end();
      this.metrics.requests.inc({ method: name, code });
      this.metrics.duration.observe({ method: name }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** A server stream as an async iterable; breaking out of the loop cancels the call. */
  async *stream<Req, Res>(address: string, method: MethodDefinition<Req, Res>, request: Req, options: StreamOptions = {}): AsyncIterable<Res> {
    const callOptions: grpc.CallOptions = {};
    if (options.deadlineMs !== undefined) callOptions.deadline = Date.now() + options.deadlineMs;
    const call = this.channel(address).makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      this.metadata(),
      callOptions,
    );
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const message of call as AsyncIterable<Res>) yield message;
    } catch (error) {
      const typed = fromServiceError(error as grpc.ServiceError, { method: shortMethodName(method.path), address });
      if (neverConnected(typed)) this.forget(address); // as in unary()
      throw typed;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /** Close every channel. Calls still in flight fail. */
  close(): void {
    this.closed = true;
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
    this.metrics.channels.set(0);
    this.credentials.close();
  }

  /** Close the channel to one address (e.g. a node that left), if open. */
  forget(address: string): void {
    this.channels.get(address)?.close();
    this.channels.delete(address);
    this.metrics.channels.set(this.channels.size);
  }

  private attempt<Req, Res>(address: string, method: MethodDefinition<Req, Res>, request: Req, deadline: number, signal?: AbortSignal): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const call = this.channel(address).makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        this.metadata(),
        { deadline },
        (error, response) => {
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(fromServiceError(error, { method: shortMethodName(method.path), address }));
          else resolve(response as Res);
        },
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set(networkIdKey, this.options.networkId);
    metadata.set(protocolVersionKey, this.options.protocolVersion);
    propagation.inject(context.active(), metadata, metadataSetter);
    return metadata;
  }

  private channel(address: string): grpc.Client {
    if (this.closed) throw new MyceliumError("UNAVAILABLE", "client pool is closed");
    const existing = this.channels.get(address);
    if (existing) {
      // Map order is insertion order: re-inserting marks the channel most recently used.
      this.channels.delete(address);
      this.channels.set(address, existing);
      return existing;
    }
    const maxPeers = this.options.maxPeers ?? 50;
    while (this.channels.size >= maxPeers) {
      const [oldest, channel] = this.channels.entries().next().value as [string, grpc.Client];
      channel.close();
      this.channels.delete(oldest);
      this.metrics.evictions.inc();
    }
    const maxMessageBytes = this.options.maxMessageBytes ?? 16 * 1024 * 1024;
    const channel = new grpc.Client(address, this.credentials.credentials, {
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      "grpc.keepalive_time_ms": this.options.keepaliveMs ?? 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 5_000,
      "grpc-node.max_session_memory": 64,
      "grpc.client_idle_timeout_ms": this.options.idleTimeoutMs ?? 30_000,
    });
    this.channels.set(address, channel);
    this.metrics.channels.set(this.channels.size);
    return channel;
  }
}

/** The call failed because its channel has no connection (as opposed to a connection that broke). */
function neverConnected(error: MyceliumError): boolean {
  return error.code === "UNAVAILABLE" && !error.reason && error.message.includes("No connection established");
}
