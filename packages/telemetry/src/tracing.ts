import * as fs from "node:fs";
import { context, propagation, trace, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";

let contextInstalled = false;

/**
 * Context propagation is process-global in OpenTelemetry: one AsyncLocalStorage context manager and
 * the W3C propagator, installed once even when several services run in one process (tests).
 */
export function installGlobalContext(): void {
  if (contextInstalled) return;
  contextInstalled = true;
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

export interface TracingOptions {
  serviceName: string;
  instanceId: string;
  /** Append every finished span as one JSON line to this file. */
  traceFile?: string;
  /** Export over OTLP/HTTP; the exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself. */
  otlp?: boolean;
  /** Extra exporters (tests pass an InMemorySpanExporter). Spans reach them synchronously on end. */
  exporters?: SpanExporter[];
}

export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

/**
 * A tracer provider per service rather than the global one, so that services sharing a process each
 * stamp their own service.name on their spans.
 */
export function createTracing(options: TracingOptions): Tracing {
  installGlobalContext();
  const spanProcessors: SpanProcessor[] = [];
  for (const exporter of options.exporters ?? []) spanProcessors.push(new SimpleSpanProcessor(exporter));
  if (options.traceFile) spanProcessors.push(new SimpleSpanProcessor(new JsonLinesSpanExporter(options.traceFile)));
  if (options.otlp) spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      "service.namespace": "mycelium",
      "service.instance.id": options.instanceId,
    }),
    spanProcessors,
  });
  return {
    tracer: provider.getTracer("mycelium"),
    shutdown: () => provider.shutdown(),
    forceFlush: () => provider.forceFlush(),
  };
}

/** The shape of one line written by the JSON-lines exporter (and read by `mycelium traces tail`). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  /** The service instance (service.instance.id): a node-agent's node id, a coordinator's name. */
  instance?: string;
  kind: number;
  startTimeMs: number;
  durationMs: number;
  status: { code: number; message?: string };
  attributes: Record<string, unknown>;
}

export function toSpanRecord(span: ReadableSpan): SpanRecord {
  const [startSeconds, startNanos] = span.startTime;
  const [durationSeconds, durationNanos] = span.duration;
  const parentSpanId = span.parentSpanContext?.spanId;
  return {
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    ...(parentSpanId ? { parentSpanId } : {}),
    name: span.name,
    service: String(span.resource.attributes["service.name"] ?? ""),
    ...(span.resource.attributes["service.instance.id"] !== undefined ? { instance: String(span.resource.attributes["service.instance.id"]) } : {}),
    kind: span.kind,
    startTimeMs: startSeconds * 1000 + startNanos / 1e6,
    durationMs: durationSeconds * 1000 + durationNanos / 1e6,
    status: { code: span.status.code, ...(span.status.message ? { message: span.status.message } : {}) },
    attributes: { ...span.attributes },
  };
}

/** Appends spans to a file, one JSON object per line; several processes may share the file. */
export class JsonLinesSpanExporter implements SpanExporter {
  /** The last append: appends run one after another, so lines are in the order spans were exported. */
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly path: string) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const text = spans.map((span) => JSON.stringify(toSpanRecord(span))).join("\n") + "\n";
    // Each write is one append of whole lines, so lines from different processes do not interleave.
    this.tail = this.tail.then(
      () =>
        new Promise<void>((resolve) =>
          fs.appendFile(this.path, text, (error) => {
            resultCallback(error ? { code: ExportResultCode.FAILED, error } : { code: ExportResultCode.SUCCESS });
            resolve();
          }),
        ),
    );
  }

  /** Waits until every span handed over so far is on disk. */
  async forceFlush(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.tail;
      await seen;
    } while (seen !== this.tail);
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }
}

export { trace, context };
