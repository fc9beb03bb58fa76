import type { SpanRecord } from "@mycelium/telemetry";

/*
 * OTLP/HTTP JSON (ExportTraceServiceRequest, as @opentelemetry/exporter-trace-otlp-http sends it) to the
 * span records the JSON-lines trace file holds, so both sources feed one assembler. The JSON mapping:
 * ids are hex strings, times are nanoseconds as decimal strings (or numbers), span kinds are the OTLP
 * enum (1 = internal, one above the API's numbering), attribute values are tagged AnyValue objects.
 */

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: string;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}

interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number | string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValue[];
  status?: { code?: number | string; message?: string };
}

export interface OtlpTraceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

/** The spans of one export request; a span without ids is skipped (there is nothing to link it by). */
export function spansFromOtlpJson(request: OtlpTraceRequest): SpanRecord[] {
  if (typeof request !== "object" || request === null) throw new TypeError("an OTLP export request is a JSON object");
  const records: SpanRecord[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    const service = String(resource["service.name"] ?? "");
    const instance = resource["service.instance.id"];
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        const traceId = normalizeId(span.traceId, 32);
        const spanId = normalizeId(span.spanId, 16);
        if (!traceId || !spanId) continue;
        const parentSpanId = normalizeId(span.parentSpanId, 16);
        const startNanos = nanos(span.startTimeUnixNano);
        const endNanos = nanos(span.endTimeUnixNano);
        records.push({
          traceId,
          spanId,
          ...(parentSpanId ? { parentSpanId } : {}),
          name: span.name ?? "",
          service,
          ...(instance !== undefined ? { instance: String(instance) } : {}),
          kind: Math.max(0, kindNumber(span.kind) - 1),
          startTimeMs: Number(startNanos / 1000n) / 1000,
          durationMs: endNanos > startNanos ? Number((endNanos - startNanos) / 1000n) / 1000 : 0,
          status: { code: statusCode(span.status?.code), ...(span.status?.message ? { message: span.status.message } : {}) },
          attributes: attributesOf(span.attributes),
        });
      }
    }
  }
  return records;
}

const kindNames: Record<string, number> = { SPAN_KIND_UNSPECIFIED: 0, SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3, SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5 };
const statusNames: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

function kindNumber(kind: number | string | undefined): number {
  if (typeof kind === "number") return kind;
  return kindNames[kind ?? ""] ?? 1;
}

function statusCode(code: number | string | undefined): number {
  if (typeof code === "number") return code;
  return statusNames[code ?? ""] ?? 0;
}

function nanos(value: string | number | undefined): bigint {
  if (value === undefined) return 0n;
  try {
    return BigInt(typeof value === "number" ? Math.round(value) : value);
  } catch {
    return 0n;
  }
}

/** Hex ids as they are; base64 ids (the proto3 JSON mapping of bytes, which some senders use) to hex. */
function normalizeId(id: string | undefined, hexLength: number): string | undefined {
  if (!id) return undefined;
  if (id.length === hexLength && /^[0-9a-fA-F]+$/.test(id)) return /^0+$/.test(id) ? undefined : id.toLowerCase();
  const bytes = base64Bytes(id);
  if (bytes && bytes.length * 2 === hexLength) {
    const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
    return /^0+$/.test(hex) ? undefined : hex;
  }
  return undefined;
}

function base64Bytes(text: string): number[] | null {
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(text)) return null;
  return [...Buffer.from(text, "base64")];
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === "string") attributes[kv.key] = valueOf(kv.value);
  return attributes;
}

function valueOf(value: AnyValue | undefined): unknown {
  if (!value) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(valueOf);
  if (value.kvlistValue !== undefined) return attributesOf(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}
