import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics";

export interface OpsServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  metrics: Metrics;
  /** Readiness: null when ready, otherwise why not (answered with 503). */
  notReadyReason: () => string | null;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Plain-HTTP operations endpoint: `/metrics` for Prometheus, `/healthz` (the process answers) and
 * `/readyz` (it can serve) for Kubernetes probes, which cannot speak mutual TLS.
 */
export function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET") {
      response.writeHead(405).end();
    } else if (path === "/metrics") {
      options.metrics.render().then(
        (text) => response.writeHead(200, { "content-type": options.metrics.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
    } else if (path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const reason = options.notReadyReason();
      response.writeHead(reason ? 503 : 200, { "content-type": "text/plain" }).end(reason ? reason + "\n" : "ready\n");
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("try /metrics, /healthz or /readyz\n");
    }
  });
  // Scrapes are short; do not let an idle keep-alive connection hold shutdown open.
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
