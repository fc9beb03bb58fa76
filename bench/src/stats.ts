/** Latency samples in milliseconds, summarised. */
export interface Summary {
  count: number;
  throughputPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export function summarise(samplesMs: number[], elapsedMs: number): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    count: sorted.length,
    throughputPerSecond: (sorted.length / elapsedMs) * 1000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
  };
}

/** Run `operation` `count` times with `concurrency` in flight; latency per operation. */
export async function measure(count: number, concurrency: number, operation: (i: number) => Promise<unknown>): Promise<Summary> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await operation(i);
        samples.push(performance.now() - t0);
      }
    }),
  );
  return summarise(samples, performance.now() - started);
}

export function formatRow(label: string, s: Summary): string {
  return `${label.padEnd(52)} ${s.throughputPerSecond.toFixed(0).padStart(8)}/s   p50 ${s.p50Ms.toFixed(3).padStart(8)} ms   p99 ${s.p99Ms.toFixed(3).padStart(8)} ms`;
}

export const header = `${"".padEnd(52)} ${"throughput".padStart(10)}   ${"p50".padStart(11)}      ${"p99".padStart(11)}`;

/**
 * Test clusters heartbeat every 500 ms so failover tests run fast; benchmarks use the defaults
 * (MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL 5 s, _TIMEOUT 15 s), so lease renewals and heartbeats cost
 * what they cost in production.
 */
export const productionHeartbeats = { MYCELIUM_REPLICATION_HEARTBEAT_INTERVAL: "5s", MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT: "15s" };
