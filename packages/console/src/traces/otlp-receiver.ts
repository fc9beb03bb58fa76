import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as zlib from "node:zlib";
import type { SpanRecord } from "@mycelium/telemetry";
import { spansFromOtlpJson, type OtlpTraceRequest } from "./core/otlp-json";
import { spansFromOtlpProtobuf } from "./otlp-protobuf";
import { readBounded } from "../io/read-bounded";

export interface OtlpReceiverOptions {
  /** @default "127.0.0.1" */
  host?: string;
  /** 4318 is OTLP/HTTP's usual port; 0 picks a free one. @default 4318 */
  port?: number;
  /** Largest request body accepted (after decompression). @default 16 MiB */
  maxBodyBytes?: number;
  onSpans: (spans: SpanRecord[]) => void;
  onError?: (error: Error) => void;
}

export interface OtlpReceiver {
  host: string;
  port: number;
  /** The value for OTEL_EXPORTER_OTLP_ENDPOINT (exporters append /v1/traces). */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * An OTLP/HTTP trace receiver (POST /v1/traces, JSON or protobuf, optionally gzip): services pointed at
 * it with OTEL_EXPORTER_OTLP_ENDPOINT deliver their spans straight to `mycelium traces tail`.
 */
export function startOtlpReceiver(options: OtlpReceiverOptions): Promise<OtlpReceiver> {
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/v1/traces") {
      response.writeHead(404, { "content-type": "text/plain" }).end("this receiver takes traces only: POST /v1/traces\n");
      return;
    }
    if (request.method !== "POST") {
      response.writeHead(405, { allow: "POST", "content-type": "text/plain" }).end("POST OTLP trace exports to /v1/traces\n");
      return;
    }
    readBody(request, maxBodyBytes).then(
      (body) => {
        const type = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        let spans: SpanRecord[];
        try {
          if (type === "application/json") spans = spansFromOtlpJson(JSON.parse(body.toString("utf8")) as OtlpTraceRequest);
          else if (type === "application/x-protobuf" || type === "application/protobuf") spans = spansFromOtlpProtobuf(body);
          else {
            response.writeHead(415, { "content-type": "text/plain" }).end(`unsupported content-type "${type}": send application/json or application/x-protobuf\n`);
            return;
          }
        } catch (error) {
          response.writeHead(400, { "content-type": "text/plain" }).end(`not an OTLP trace export: ${(error as Error).message}\n`);
          return;
        }
        if (spans.length > 0) options.onSpans(spans);
        const json = type === "application/json";
        response.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" }).end(json ? "{}" : Buffer.alloc(0));
      },
      (error: Error & { status?: number }) => {
        options.onError?.(error);
        if (!response.headersSent) response.writeHead(error.status ?? 400, { "content-type": "text/plain" }).end(`${error.message}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 30_000;
  const host = options.host ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new Error(`${host}:${options.port ?? 4318} is in use: choose another address with --otlp <host:port>`) : error),
    );
    server.listen(options.port ?? 4318, host, () => {
      const port = (server.address() as AddressInfo).port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({
        host,
        port,
        endpoint: `http://${shown}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

function readBody(request: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const encoding = (request.headers["content-encoding"] ?? "identity").toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip" && encoding !== "deflate") {
    request.resume();
    return Promise.reject(Object.assign(new Error(`unsupported content-encoding "${encoding}": send gzip or none`), { status: 415 }));
  }
  const source = encoding === "gzip" ? request.pipe(zlib.createGunzip()) : encoding === "deflate" ? request.pipe(zlib.createInflate()) : request;
  // Bounded after decompression: a small gzip bomb must not fill memory either.
  return readBounded(source, maxBytes, "the request body (export smaller batches: OTEL_BSP_MAX_EXPORT_BATCH_SIZE)").catch((error: Error) => {
    request.destroy();
    throw error;
  });
}
