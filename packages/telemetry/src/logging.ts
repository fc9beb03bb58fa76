import { trace } from "@opentelemetry/api";
import pino, { type Logger } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface LoggerOptions {
  serviceName: string;
  instanceId: string;
  level: LogLevel;
  /** Where JSON lines go; standard error by default so standard output stays free for a CLI's answers. */
  destination?: pino.DestinationStream;
}

/** pino JSON logs; every line written inside an active span carries its trace_id and span_id. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.serviceName, instance: options.instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

export type { Logger };
