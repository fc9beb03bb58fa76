import type { SpanRecord } from "@mycelium/telemetry";

/**
 * One line of the JSON-lines trace file (MYCELIUM_TRACE_FILE) as a span record, or null for a line
 * that is not one (a half-written last line, a foreign line): a tail skips those instead of stopping.
 */
export function parseSpanLine(line: string): SpanRecord | null {
  const text = line.trim();
  if (!text.startsWith("{")) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const span = value as Partial<SpanRecord>;
  if (typeof span.traceId !== "string" || typeof span.spanId !== "string" || typeof span.name !== "string") return null;
  if (typeof span.startTimeMs !== "number" || typeof span.durationMs !== "number") return null;
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(typeof span.parentSpanId === "string" && span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    name: span.name,
    service: typeof span.service === "string" ? span.service : "",
    ...(typeof span.instance === "string" ? { instance: span.instance } : {}),
    kind: typeof span.kind === "number" ? span.kind : 0,
    startTimeMs: span.startTimeMs,
    durationMs: span.durationMs,
    status: typeof span.status === "object" && span.status !== null && typeof span.status.code === "number" ? span.status : { code: 0 },
    attributes: typeof span.attributes === "object" && span.attributes !== null ? span.attributes : {},
  };
}
