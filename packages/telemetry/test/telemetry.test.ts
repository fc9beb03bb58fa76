import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { context, trace } from "@opentelemetry/api";
import {
  createLogger,
  createTelemetry,
  createTracing,
  InMemorySpanExporter,
  JsonLinesSpanExporter,
  Metrics,
  startOpsServer,
  type SpanRecord,
} from "@mycelium/telemetry";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-telemetry-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function capture(): { lines: string[]; destination: { write(line: string): void } } {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe("logger", () => {
  it("stamps trace_id and span_id of the active span, also after an await, and nothing outside a span", async () => {
    const { lines, destination } = capture();
    const telemetry = createTelemetry({ serviceName: "svc", instanceId: "svc-1", logDestination: destination, processMetrics: false });
    let ids: { traceId: string; spanId: string } | null = null;
    await telemetry.tracer.startActiveSpan("work", async (span) => {
      ids = span.spanContext();
      telemetry.logger.info("inside");
      await new Promise((resolve) => setTimeout(resolve, 1));
      telemetry.logger.child({ component: "x" }).warn("inside, later");
      span.end();
    });
    telemetry.logger.info("outside");
    const entries = lines.map((line) => JSON.parse(line));
    expect(entries.map((entry) => entry.msg)).toEqual(["inside", "inside, later", "outside"]);
    for (const entry of entries.slice(0, 2)) {
      expect(entry.trace_id).toBe(ids!.traceId);
      expect(entry.span_id).toBe(ids!.spanId);
      expect(entry.trace_id).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(entries[2].trace_id).toBeUndefined();
    expect(entries[2].span_id).toBeUndefined();
    expect(entries[1].component).toBe("x");
    for (const entry of entries) {
      expect(entry.service).toBe("svc");
      expect(entry.instance).toBe("svc-1");
      expect(typeof entry.time).toBe("string");
      expect(Number.isNaN(Date.parse(entry.time))).toBe(false);
    }
  });

  it("respects the level", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ serviceName: "s", instanceId: "i", level: "warn", destination });
    logger.info("dropped");
    logger.warn("kept");
    logger.error("kept too");
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(["kept", "kept too"]);
  });

  it("a span in a context that is not active does not leak into the log line", () => {
    const { lines, destination } = capture();
    const telemetry = createTelemetry({ serviceName: "svc", instanceId: "i", logDestination: destination, processMetrics: false });
    const span = telemetry.tracer.startSpan("not active");
    telemetry.logger.info("plain");
    context.with(trace.setSpan(context.active(), span), () => telemetry.logger.info("in span"));
    span.end();
    const [plain, inSpan] = lines.map((line) => JSON.parse(line));
    expect(plain.span_id).toBeUndefined();
    expect(inSpan.span_id).toBe(span.spanContext().spanId);
  });
});

describe("Metrics", () => {
  const metrics = () => new Metrics({ service: "svc", instance: "i" }, { processMetrics: false });

  it.each([
    ["counter", "requests_total", "must start with mycelium_"],
    ["counter", "mycelium_requests", "must end with _total"],
    ["gauge", "mycelium_in_flight_total", "must not end with _total"],
    ["histogram", "mycelium_duration_seconds_total", "must not end with _total"],
    ["gauge", "myc_in_flight", "must start with mycelium_"],
    ["histogram", "latency_seconds", "must start with mycelium_"],
  ] as const)("a %s named %s is refused (%s)", (type, name, message) => {
    expect(() => metrics()[type]({ name, help: "h" })).toThrow(message);
  });

  it("well-named metrics are served with the service and instance labels, histograms with latency buckets", async () => {
    const m = metrics();
    m.counter({ name: "mycelium_things_total", help: "Things.", labelNames: ["kind"] as const }).inc({ kind: "a" }, 3);
    m.gauge({ name: "mycelium_queue_depth", help: "Depth." }).set(7);
    m.histogram({ name: "mycelium_work_seconds", help: "Work." }).observe(0.003);
    const text = await m.render();
    expect(text).toContain('mycelium_things_total{kind="a",service="svc",instance="i"} 3');
    expect(text).toContain('mycelium_queue_depth{service="svc",instance="i"} 7');
    expect(text).toContain('mycelium_work_seconds_bucket{le="0.0025",service="svc",instance="i"} 0');
    expect(text).toContain('mycelium_work_seconds_bucket{le="0.005",service="svc",instance="i"} 1');
    expect(text).toMatch(/mycelium_uptime_seconds\{service="svc",instance="i"\} \d/);
    expect(text).not.toContain("mycelium_process_");
  });

  it("process metrics carry the mycelium_process_ prefix", async () => {
    const text = await new Metrics({ service: "svc", instance: "i" }).render();
    expect(text).toContain("mycelium_process_");
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) expect(line).toMatch(/^mycelium_/);
  });

  it("two registries do not share counters", async () => {
    const a = metrics();
    const b = metrics();
    a.counter({ name: "mycelium_x_total", help: "x" }).inc();
    b.counter({ name: "mycelium_x_total", help: "x" });
    expect(await b.render()).toContain('mycelium_x_total{service="svc",instance="i"} 0');
  });
});

function get(port: number, urlPath: string, method = "GET"): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path: urlPath, method, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, type: response.headers["content-type"], body }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("startOpsServer", () => {
  it("answers /metrics, /healthz and /readyz (503 with the reason until ready), 404 elsewhere, 405 for other methods", async () => {
    const metrics = new Metrics({ service: "svc", instance: "i" }, { processMetrics: false });
    metrics.counter({ name: "mycelium_scraped_total", help: "s" }).inc();
    let reason: string | null = "waiting for the control store";
    const ops = await startOpsServer({ host: "127.0.0.1", port: 0, metrics, notReadyReason: () => reason });
    try {
      expect(ops.port).toBeGreaterThan(0);
      const scrape = await get(ops.port, "/metrics");
      expect(scrape.status).toBe(200);
      expect(scrape.type).toBe(metrics.contentType);
      expect(scrape.body).toContain('mycelium_scraped_total{service="svc",instance="i"} 1');

      expect(await get(ops.port, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });

      expect(await get(ops.port, "/readyz")).toMatchObject({ status: 503, body: "waiting for the control store\n" });
      reason = null;
      expect(await get(ops.port, "/readyz")).toMatchObject({ status: 200, body: "ready\n" });
      expect(await get(ops.port, "/readyz?verbose=1")).toMatchObject({ status: 200 });
      reason = "stopping";
      expect(await get(ops.port, "/readyz")).toMatchObject({ status: 503, body: "stopping\n" });

      for (const other of ["/", "/metric", "/healthz/x", "/favicon.ico"]) expect((await get(ops.port, other)).status).toBe(404);
      expect((await get(ops.port, "/metrics", "POST")).status).toBe(405);
    } finally {
      await ops.close();
    }
    await expect(get(ops.port, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
  });

  it("a scrape that fails to render answers 500", async () => {
    const metrics = new Metrics({ service: "svc", instance: "i" }, { processMetrics: false });
    metrics.gauge({
      name: "mycelium_broken",
      help: "b",
      collect() {
        throw new Error("collector broke");
      },
    });
    const ops = await startOpsServer({ host: "127.0.0.1", port: 0, metrics, notReadyReason: () => null });
    try {
      const response = await get(ops.port, "/metrics");
      expect(response.status).toBe(500);
      expect(response.body).toContain("collector broke");
    } finally {
      await ops.close();
    }
  });

  it("fails to start on a port already taken", async () => {
    const metrics = new Metrics({ service: "svc", instance: "i" }, { processMetrics: false });
    const first = await startOpsServer({ host: "127.0.0.1", port: 0, metrics, notReadyReason: () => null });
    try {
      await expect(startOpsServer({ host: "127.0.0.1", port: first.port, metrics, notReadyReason: () => null })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

describe("JsonLinesSpanExporter", () => {
  it("writes one parseable line per span with trace, parent, service, kind, status and attributes", async () => {
    const file = path.join(root, "spans.jsonl");
    const tracing = createTracing({ serviceName: "svc", instanceId: "i", traceFile: file });
    tracing.tracer.startActiveSpan("parent", (parent) => {
      const child = tracing.tracer.startSpan("child", { attributes: { "rpc.method": "/p.S/M", n: 3 } });
      child.setStatus({ code: 2, message: "it broke" });
      child.end();
      parent.end();
    });
    await tracing.forceFlush();
    const records = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line) as SpanRecord);
    expect(records.map((r) => r.name)).toEqual(["child", "parent"]);
    const [child, parent] = records as [SpanRecord, SpanRecord];
    expect(child.traceId).toBe(parent.traceId);
    expect(child.parentSpanId).toBe(parent.spanId);
    expect(parent.parentSpanId).toBeUndefined();
    expect(child.service).toBe("svc");
    expect(child.status).toEqual({ code: 2, message: "it broke" });
    expect(parent.status).toEqual({ code: 0 });
    expect(child.attributes).toEqual({ "rpc.method": "/p.S/M", n: 3 });
    expect(child.durationMs).toBeGreaterThanOrEqual(0);
    expect(child.startTimeMs).toBeGreaterThan(Date.parse("2020-01-01"));
    await tracing.shutdown();
  });

  it("appends to what is there, so several exporters can share a file", async () => {
    const file = path.join(root, "shared.jsonl");
    fs.writeFileSync(file, "");
    const tracings = ["a", "b"].map((name) => createTracing({ serviceName: name, instanceId: name, traceFile: file }));
    for (const tracing of tracings) tracing.tracer.startSpan("s").end();
    await Promise.all(tracings.map((t) => t.forceFlush()));
    const services = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((line) => (JSON.parse(line) as SpanRecord).service);
    expect(services.sort()).toEqual(["a", "b"]);
    await Promise.all(tracings.map((t) => t.shutdown()));
  });

  it("reports a failed write to its caller", async () => {
    const memory = new InMemorySpanExporter();
    const tracing = createTracing({ serviceName: "svc", instanceId: "i", exporters: [memory] });
    tracing.tracer.startSpan("lost").end();
    const exporter = new JsonLinesSpanExporter(path.join(root, "no-such-dir", "x.jsonl"));
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(memory.getFinishedSpans(), resolve));
    expect(result.code).toBe(1); // ExportResultCode.FAILED
    expect(result.error?.message).toMatch(/ENOENT/);
    const good = new JsonLinesSpanExporter(path.join(root, "direct.jsonl"));
    const ok = await new Promise<{ code: number }>((resolve) => good.export(memory.getFinishedSpans(), resolve));
    expect(ok.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(root, "direct.jsonl"), "utf8")).name).toBe("lost");
  });

  // BUG (packages/telemetry/src/tracing.ts:117-118 JsonLinesSpanExporter.shutdown, and telemetry.ts:58 shutdown()): spans
  // are appended asynchronously, but the exporter has no forceFlush and its shutdown() does not wait for
  // pending appends, and Telemetry.shutdown() calls provider.shutdown() without forceFlush(). So
  // `await telemetry.shutdown()` resolves before the last spans are on disk, and runMain's
  // process.exit(0) right after stop() loses them. Fix: track pending appends in the exporter and await
  // them in shutdown()/forceFlush(), and/or `await tracing.forceFlush()` first in Telemetry.shutdown().
  test("every span ended before telemetry.shutdown() is in the trace file when it resolves", async () => {
    const file = path.join(root, "shutdown.jsonl");
    const telemetry = createTelemetry({ serviceName: "svc", instanceId: "i", traceFile: file, logLevel: "silent", processMetrics: false });
    telemetry.tracer.startSpan("last words").end();
    await telemetry.shutdown();
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    expect(text).toContain('"name":"last words"');
  });
});
