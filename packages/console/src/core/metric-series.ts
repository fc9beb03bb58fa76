import type { Sample } from "./prometheus-text";

/** Samples of every scraped target at one moment. */
export interface Scrape {
  atMs: number;
  samples: readonly Sample[];
}

export type LabelFilter = Readonly<Record<string, string>>;

function matches(sample: Sample, name: string, filter: LabelFilter): boolean {
  if (sample.name !== name) return false;
  for (const [key, value] of Object.entries(filter)) if (sample.labels[key] !== value) return false;
  return true;
}

/** Sum of every series of `name` whose labels include `filter` (null when there is none). */
export function sumOf(samples: readonly Sample[], name: string, filter: LabelFilter = {}): number | null {
  let total: number | null = null;
  for (const sample of samples) if (matches(sample, name, filter)) total = (total ?? 0) + sample.value;
  return total;
}

/** The identity of a series: its name and labels, so a counter is compared with itself across scrapes. */
function seriesKey(sample: Sample): string {
  return sample.name + JSON.stringify(Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Increase of a counter between two scrapes, summed over the matching series. A series that went down
 * was reset (its process restarted): it counts from zero, as Prometheus's `increase` does. A series
 * that appeared in between counts from zero too.
 */
export function counterIncrease(before: readonly Sample[], after: readonly Sample[], name: string, filter: LabelFilter = {}): number | null {
  const previous = new Map<string, number>();
  for (const sample of before) if (matches(sample, name, filter)) previous.set(seriesKey(sample), sample.value);
  let total: number | null = null;
  for (const sample of after) {
    if (!matches(sample, name, filter)) continue;
    const old = previous.get(seriesKey(sample)) ?? 0;
    total = (total ?? 0) + (sample.value >= old ? sample.value - old : sample.value);
  }
  return total;
}

/** Per-second rate of a counter between two scrapes (null when unknown or no time passed). */
export function counterRate(before: Scrape, after: Scrape, name: string, filter: LabelFilter = {}): number | null {
  const seconds = (after.atMs - before.atMs) / 1000;
  if (seconds <= 0) return null;
  const increase = counterIncrease(before.samples, after.samples, name, filter);
  return increase === null ? null : increase / seconds;
}

/**
 * A quantile of the observations a histogram received between two scrapes, in the histogram's unit,
 * by linear interpolation inside the bucket that holds it (Prometheus's `histogram_quantile`).
 * Null when nothing was observed in between.
 */
export function histogramQuantile(quantile: number, before: readonly Sample[], after: readonly Sample[], name: string, filter: LabelFilter = {}): number | null {
  if (!(quantile >= 0 && quantile <= 1)) throw new RangeError(`quantile must be within [0, 1], got ${quantile}`);
  const buckets = bucketIncreases(before, after, name, filter);
  const total = buckets.length > 0 ? buckets[buckets.length - 1]!.count : 0;
  if (total <= 0) return null;
  const rank = quantile * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank && bucket.count > lowerCount) {
      // Observations above the highest finite bound: the best answer is that bound.
      if (bucket.le === Infinity) return lowerBound;
      return lowerBound + ((bucket.le - lowerBound) * (rank - lowerCount)) / (bucket.count - lowerCount);
    }
    lowerBound = bucket.le === Infinity ? lowerBound : bucket.le;
    lowerCount = bucket.count;
  }
  return lowerBound;
}

/** Observations a histogram received between two scrapes (its `_count` increase). */
export function histogramCount(before: readonly Sample[], after: readonly Sample[], name: string, filter: LabelFilter = {}): number {
  return counterIncrease(before, after, `${name}_count`, filter) ?? 0;
}

/** Cumulative bucket increases, ascending by upper bound, summed over the matching series. */
function bucketIncreases(before: readonly Sample[], after: readonly Sample[], name: string, filter: LabelFilter): Array<{ le: number; count: number }> {
  const bucketName = `${name}_bucket`;
  const bounds = new Set<number>();
  for (const sample of after) if (matches(sample, bucketName, filter)) bounds.add(parseBound(sample.labels.le));
  return [...bounds]
    .filter((le) => !Number.isNaN(le))
    .sort((a, b) => a - b)
    .map((le) => {
      const pick = (samples: readonly Sample[]) => samples.filter((s) => matches(s, bucketName, filter) && parseBound(s.labels.le) === le);
      return { le, count: counterIncrease(pick(before), pick(after), bucketName) ?? 0 };
    });
}

function parseBound(le: string | undefined): number {
  if (le === undefined) return NaN;
  return le === "+Inf" ? Infinity : Number(le);
}

/**
 * A bounded time series: a fixed number of points, the oldest dropped first. The dashboard keeps one
 * per plotted line, so memory does not grow however long it runs.
 */
export class SeriesBuffer {
  private readonly times: number[] = [];
  private readonly columns = new Map<string, Array<number | null>>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`a series keeps at least 2 points, got ${capacity}`);
  }

  /** Add one point in time; a label missing from `values` gets a gap (null) there. */
  push(atMs: number, values: Readonly<Record<string, number | null>>): void {
    for (const label of Object.keys(values)) {
      if (!this.columns.has(label)) this.columns.set(label, this.times.map(() => null));
    }
    this.times.push(atMs / 1000);
    for (const [label, column] of this.columns) column.push(values[label] ?? null);
    if (this.times.length > this.capacity) {
      this.times.shift();
      for (const column of this.columns.values()) column.shift();
    }
    // A line with no value left in the window is dropped, so labels of gone shards do not pile up.
    for (const [label, column] of this.columns) if (column.every((value) => value === null)) this.columns.delete(label);
  }

  /** The labels kept, in the order they first appeared. */
  labels(): string[] {
    return [...this.columns.keys()];
  }

  /** The columns for a plot, the lines limited to `labels` (all when omitted). */
  toSeriesSet(labels?: readonly string[]): { times: number[]; series: Array<{ label: string; values: Array<number | null> }> } {
    const wanted = labels ?? this.labels();
    return {
      times: [...this.times],
      series: wanted.filter((label) => this.columns.has(label)).map((label) => ({ label, values: [...this.columns.get(label)!] })),
    };
  }

  /** The highest value of a line in the window (null when it has none). */
  maxOf(label: string): number | null {
    let max: number | null = null;
    for (const value of this.columns.get(label) ?? []) if (value !== null && (max === null || value > max)) max = value;
    return max;
  }
}
