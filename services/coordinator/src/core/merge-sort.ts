import type { router, SqlValue } from "@mycelium/proto";
import { compareSqlValues } from "./merge-values";

export type RowComparator = (a: readonly SqlValue[], b: readonly SqlValue[]) => number;

/** ORDER BY as a row comparator: each key ascending or descending, NULLs first or last as the key says. */
export function rowComparator(keys: readonly router.SortKey[], width: number): RowComparator {
  for (const key of keys) {
    if (key.columnIndex < 0 || key.columnIndex >= width) throw new Error(`sort key column ${key.columnIndex} is outside the ${width}-column row`);
  }
  return (a, b) => {
    for (const key of keys) {
      const x = a[key.columnIndex]!;
      const y = b[key.columnIndex]!;
      if (x === null || y === null) {
        if (x === y) continue;
        // NULL placement is absolute: NULLS FIRST puts them first in either direction.
        return (x === null) === key.nullsFirst ? -1 : 1;
      }
      const c = compareSqlValues(x, y);
      if (c !== 0) return key.descending ? -c : c;
    }
    return 0;
  };
}

/**
 * k-way merge of streams each sorted by `compare`, stopping after `take` rows. Equal rows keep stream order
 * (the earlier stream first). With `distinctKey`, a row whose key was already taken is skipped. A stream
 * that is not sorted is a broken plan and throws.
 */
export function mergeSortedStreams(
  streams: ReadonlyArray<readonly SqlValue[][]>,
  compare: RowComparator,
  take: number,
  distinctKey: ((row: readonly SqlValue[]) => string) | null,
): SqlValue[][] {
  const out: SqlValue[][] = [];
  const seen = new Set<string>();
  // A binary heap of stream indexes, ordered by each stream's current row.
  const position = streams.map(() => 0);
  const before = (s: number, t: number): boolean => {
    const c = compare(streams[s]![position[s]!]!, streams[t]![position[t]!]!);
    return c < 0 || (c === 0 && s < t);
  };
  const heap: number[] = [];
  const up = (i: number): void => {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < heap.length && before(heap[l]!, heap[best]!)) best = l;
      if (r < heap.length && before(heap[r]!, heap[best]!)) best = r;
      if (best === i) return;
      [heap[i], heap[best]] = [heap[best]!, heap[i]!];
      i = best;
    }
  };
  streams.forEach((stream, s) => {
    if (stream.length > 0) {
      heap.push(s);
      up(heap.length - 1);
    }
  });
  while (heap.length > 0 && out.length < take) {
    const s = heap[0]!;
    const stream = streams[s]!;
    const row = stream[position[s]!]!;
    if (distinctKey) {
      const key = distinctKey(row);
      if (!seen.has(key)) {
        seen.add(key);
        out.push(row);
      }
    } else {
      out.push(row);
    }
    position[s]! += 1;
    if (position[s]! < stream.length) {
      if (compare(row, stream[position[s]!]!) > 0) throw new Error(`shard ${s} returned rows out of the plan's order`);
      down(0);
    } else {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
      if (heap.length > 0) down(0);
    }
  }
  return out;
}
