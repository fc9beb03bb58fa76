import type { Tracer } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createLogger, type LogLevel, type Logger } from "./logging";
import { Metrics } from "./metrics";
import { createTracing } from "./tracing";
import type pino from "pino";

export interface TelemetryOptions {
  serviceName: string;
  instanceId: string;
  /** @default "info" */
  logLevel?: LogLevel;
  logDestination?: pino.DestinationStream;
  traceFile?: string;
  /** @default false */
  otlp?: boolean;
  spanExporters?: SpanExporter[];
  /** Node.js process metrics (heap, event-loop lag); off for services sharing a test process. @default true */
  processMetrics?: boolean;
}

/** Everything a service observes itself with, created once in main.ts and passed down. */
export interface Telemetry {
  serviceName: string;
  instanceId: string;
  logger: Logger;
  tracer: Tracer;
  metrics: Metrics;
  shutdown(): Promise<void>;
}

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const tracing = createTracing({
    serviceName: options.serviceName,
    instanceId: options.instanceId,
    ...(options.traceFile ? { traceFile: options.traceFile } : {}),
    otlp: options.otlp ?? false,
    exporters: options.spanExporters ?? [],
  });
  const logger = createLogger({
    serviceName: options.serviceName,
    instanceId: options.instanceId,
    level: options.logLevel ?? "info",
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  const metrics = new Metrics(
    { service: options.serviceName, instance: options.instanceId },
    { processMetrics: options.processMetrics ?? true },
  );
  return {
    serviceName: options.serviceName,
    instanceId: options.instanceId,
    logger,
    tracer: tracing.tracer,
    metrics,
    async shutdown() {
      // Telemetry never throws: a failing exporter must not turn a clean shutdown into a crash.
      await tracing.forceFlush().catch(() => undefined);
      await tracing.shutdown().catch((error: unknown) => logger.warn({ err: error }, "trace exporter shutdown failed"));
      logger.flush();
    },
  };
}

/** Telemetry that records nothing, for tools and tests that do not look at it. */
export function createSilentTelemetry(serviceName = "test"): Telemetry {
  return createTelemetry({ serviceName, instanceId: serviceName, logLevel: "silent", processMetrics: false });
}
