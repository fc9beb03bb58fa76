import * as client from "prom-client";

const PREFIX = "mycelium_";

/**
 * One Prometheus registry per service (not prom-client's global one), so services sharing a process in
 * tests keep separate counters. Names are checked: `mycelium_` prefix, base units, `_total` counters.
 */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly startedAtMs = Date.now();

  constructor(labels: { service: string; instance: string }, options: { processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels(labels);
    if (options.processMetrics ?? true) {
      client.collectDefaultMetrics({ register: this.registry, prefix: PREFIX + "process_" });
    }
    const startedAtMs = this.startedAtMs;
    this.gauge({
      name: "mycelium_uptime_seconds",
      help: "Seconds since this service started.",
      collect() {
        this.set((Date.now() - startedAtMs) / 1000);
      },
    });
  }

  counter<L extends string>(config: client.CounterConfiguration<L>): client.Counter<L> {
    checkName(config.name, "counter");
    return new client.Counter({ ...config, registers: [this.registry] });
  }

  gauge<L extends string>(config: client.GaugeConfiguration<L>): client.Gauge<L> {
    checkName(config.name, "gauge");
    return new client.Gauge({ ...config, registers: [this.registry] });
  }

  histogram<L extends string>(config: client.HistogramConfiguration<L>): client.Histogram<L> {
    checkName(config.name, "histogram");
    return new client.Histogram({ buckets: latencyBucketsSeconds, ...config, registers: [this.registry] });
  }

  /** Text exposition format, as served on /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** 100 µs to 30 s: loopback RPCs sit at the low end, a stuck two-phase commit at the high end. */
export const latencyBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

function checkName(name: string, type: "counter" | "gauge" | "histogram"): void {
  if (!name.startsWith(PREFIX)) throw new Error(`metric ${name} must start with ${PREFIX}`);
  if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} must end with _total`);
  if (type !== "counter" && name.endsWith("_total")) throw new Error(`${type} ${name} must not end with _total`);
}
