import * as protobuf from "protobufjs";
import type { SpanRecord } from "@mycelium/telemetry";
import { spansFromOtlpJson, type OtlpTraceRequest } from "./core/otlp-json";

/*
 * The part of OpenTelemetry's trace protocol a receiver needs (opentelemetry/proto/collector/trace/v1 and
 * the messages it uses), with the upstream field numbers; events and links are not shown, so they are
 * left out and skipped as unknown fields.
 */
const definition = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

let requestType: protobuf.Type | null = null;

function exportRequestType(): protobuf.Type {
  requestType ??= protobuf.parse(definition, { keepCase: false }).root.lookupType("otlp.ExportTraceServiceRequest");
  return requestType;
}

/** The spans of one protobuf-encoded ExportTraceServiceRequest. */
export function spansFromOtlpProtobuf(body: Uint8Array): SpanRecord[] {
  const type = exportRequestType();
  const message = type.decode(body);
  // The object form of the JSON mapping: longs as decimal strings, bytes as base64 (ids are read as such).
  const object = type.toObject(message, { longs: String, bytes: String, defaults: false, oneofs: false }) as OtlpTraceRequest;
  return spansFromOtlpJson(object);
}

/** Encode spans' JSON-mapping form as protobuf (tests of the receiver send with it). */
export function encodeOtlpProtobuf(request: OtlpTraceRequest): Uint8Array {
  const type = exportRequestType();
  const converted = JSON.parse(JSON.stringify(request), (key: string, value: unknown) =>
    (key === "traceId" || key === "spanId" || key === "parentSpanId") && typeof value === "string" ? Buffer.from(value, "hex").toString("base64") : value,
  ) as object;
  return type.encode(type.fromObject(converted)).finish();
}
