export { createTelemetry, createSilentTelemetry, type Telemetry, type TelemetryOptions } from "./telemetry";
export { createLogger, type Logger, type LogLevel } from "./logging";
export { Metrics, latencyBucketsSeconds } from "./metrics";
export { startOpsServer, type OpsServer, type OpsServerOptions } from "./ops-server";
export { createTracing, installGlobalContext, JsonLinesSpanExporter, toSpanRecord, type SpanRecord } from "./tracing";
export { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
export type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
export type { Counter, Gauge, Histogram } from "prom-client";
export { spanAttributes, annotateActiveSpan } from "./span-attributes";
