import * as fc from "fast-check";
import { counterIncrease, counterRate, histogramCount, histogramQuantile, parsePrometheusText, SeriesBuffer, sumOf, type Sample } from "@mycelium/console";

describe("parsePrometheusText", () => {
  test("reads names, labels with escapes, special values, and skips comments and broken lines", () => {
    const samples = parsePrometheusText(
      [
        "# HELP mycelium_transactions_total Finished transactions.",
        "# TYPE mycelium_transactions_total counter",
        'mycelium_transactions_total{outcome="committed",kind="two_phase",service="coordinator"} 42',
        'mycelium_weird{path="a\\"b\\\\c\\nd"} 1.5e3 1700000000000',
        "mycelium_uptime_seconds 12.25",
        'mycelium_bucket{le="+Inf"} +Inf',
        "mycelium_nan NaN",
        'broken{le="1" 3',
        "{no_name} 3",
        "",
      ].join("\n"),
    );
    expect(samples.map((s) => s.name)).toEqual(["mycelium_transactions_total", "mycelium_weird", "mycelium_uptime_seconds", "mycelium_bucket", "mycelium_nan"]);
    expect(samples[0]).toEqual({ name: "mycelium_transactions_total", labels: { outcome: "committed", kind: "two_phase", service: "coordinator" }, value: 42 });
    expect(samples[1]!.labels.path).toBe('a"b\\c\nd');
    expect(samples[1]!.value).toBe(1500);
    expect(samples[3]!.value).toBe(Infinity);
    expect(Number.isNaN(samples[4]!.value)).toBe(true);
  });
});

const counter = (value: number, labels: Record<string, string> = {}): Sample => ({ name: "mycelium_transactions_total", labels: { outcome: "committed", ...labels }, value });

describe("counters", () => {
  test("increase sums the matching series and counts a reset (a restarted process) from zero", () => {
    const before = [counter(10, { instance: "a" }), counter(5, { instance: "b" }), counter(7, { instance: "c", outcome: "aborted" })];
    const after = [counter(15, { instance: "a" }), counter(2, { instance: "b" }), counter(9, { instance: "c", outcome: "aborted" }), counter(4, { instance: "new" })];
    // a: +5; b restarted: +2; new: +4 (from zero); aborted not matched.
    expect(counterIncrease(before, after, "mycelium_transactions_total", { outcome: "committed" })).toBe(11);
    expect(counterIncrease(before, after, "mycelium_transactions_total", { outcome: "aborted" })).toBe(2);
    expect(counterIncrease(before, after, "mycelium_missing_total")).toBeNull();
  });

  test("rate divides by the seconds between the scrapes; no time passed is unknown", () => {
    const before = { atMs: 1000, samples: [counter(10)] };
    const after = { atMs: 3000, samples: [counter(30)] };
    expect(counterRate(before, after, "mycelium_transactions_total")).toBe(10);
    expect(counterRate(after, after, "mycelium_transactions_total")).toBeNull();
  });

  test("sumOf adds every matching series", () => {
    expect(sumOf([counter(1), counter(2, { instance: "x" }), counter(4, { outcome: "aborted" })], "mycelium_transactions_total", { outcome: "committed" })).toBe(3);
    expect(sumOf([], "mycelium_transactions_total")).toBeNull();
  });
});

/** Cumulative buckets of a histogram `mycelium_d_seconds` with the given per-bucket counts. */
function histogram(bounds: number[], counts: number[], labels: Record<string, string> = {}): Sample[] {
  let cumulative = 0;
  const samples: Sample[] = bounds.map((le, i) => {
    cumulative += counts[i] ?? 0;
    return { name: "mycelium_d_seconds_bucket", labels: { ...labels, le: String(le) }, value: cumulative };
  });
  cumulative += counts[bounds.length] ?? 0;
  samples.push({ name: "mycelium_d_seconds_bucket", labels: { ...labels, le: "+Inf" }, value: cumulative });
  samples.push({ name: "mycelium_d_seconds_count", labels, value: cumulative });
  return samples;
}

describe("histogramQuantile", () => {
  const bounds = [0.001, 0.01, 0.1, 1];

  test("interpolates inside the bucket holding the rank, over what was observed between the scrapes", () => {
    const before = histogram(bounds, [100, 0, 0, 0, 0]);
    // Between the scrapes: 10 observations in (0.01, 0.1], 10 in (0.1, 1].
    const after = histogram(bounds, [100, 0, 10, 10, 0]);
    expect(histogramQuantile(0.5, before, after, "mycelium_d_seconds")).toBeCloseTo(0.1, 10);
    expect(histogramQuantile(0.25, before, after, "mycelium_d_seconds")).toBeCloseTo(0.01 + 0.09 * 0.5, 10);
    expect(histogramQuantile(0.75, before, after, "mycelium_d_seconds")).toBeCloseTo(0.1 + 0.9 * 0.5, 10);
    expect(histogramCount(before, after, "mycelium_d_seconds")).toBe(20);
  });

  test("nothing observed is unknown; observations above every bound give the highest bound", () => {
    const same = histogram(bounds, [3, 0, 0, 0, 0]);
    expect(histogramQuantile(0.5, same, same, "mycelium_d_seconds")).toBeNull();
    expect(histogramQuantile(0.99, [], histogram(bounds, [0, 0, 0, 0, 5]), "mycelium_d_seconds")).toBe(1);
    expect(() => histogramQuantile(1.5, [], same, "mycelium_d_seconds")).toThrow(RangeError);
  });

  test("sums the series of every instance that matches the filter", () => {
    const after = [...histogram(bounds, [0, 4, 0, 0, 0], { instance: "a", phase: "prepare" }), ...histogram(bounds, [0, 0, 0, 4, 0], { instance: "b", phase: "prepare" }), ...histogram(bounds, [8, 0, 0, 0, 0], { instance: "a", phase: "commit" })];
    // 8 prepare observations: 4 in (0.001, 0.01], 4 in (0.1, 1]; the median is the top of the first.
    expect(histogramQuantile(0.5, [], after, "mycelium_d_seconds", { phase: "prepare" })).toBeCloseTo(0.01, 10);
  });

  test("property: a quantile lies within the observed buckets and grows with q", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: 5, maxLength: 5 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (counts, a, b) => {
        const after = histogram(bounds, counts);
        const total = counts.reduce((x, y) => x + y, 0);
        const qa = histogramQuantile(Math.min(a, b), [], after, "mycelium_d_seconds");
        const qb = histogramQuantile(Math.max(a, b), [], after, "mycelium_d_seconds");
        if (total === 0) return qa === null && qb === null;
        return qa !== null && qb !== null && qa <= qb + 1e-12 && qa >= 0 && qb <= 1;
      }),
    );
  });
});

describe("SeriesBuffer", () => {
  test("keeps at most capacity points, fills gaps with null, and drops lines with no value left", () => {
    const buffer = new SeriesBuffer(3);
    buffer.push(1000, { a: 1 });
    buffer.push(2000, { a: 2, b: 20 });
    buffer.push(3000, { b: 30 });
    expect(buffer.toSeriesSet()).toEqual({ times: [1, 2, 3], series: [{ label: "a", values: [1, 2, null] }, { label: "b", values: [null, 20, 30] }] });
    buffer.push(4000, { b: 40 });
    buffer.push(5000, { b: 50 });
    // a's last value left the window.
    expect(buffer.toSeriesSet()).toEqual({ times: [3, 4, 5], series: [{ label: "b", values: [30, 40, 50] }] });
    expect(buffer.maxOf("b")).toBe(50);
    expect(buffer.toSeriesSet(["b", "gone"]).series.map((s) => s.label)).toEqual(["b"]);
    expect(() => new SeriesBuffer(1)).toThrow(RangeError);
  });
});
