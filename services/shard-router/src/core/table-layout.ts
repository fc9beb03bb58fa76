import { common, fromValue, toValue } from "@mycelium/proto";
import type { ColumnDef, KeyPredicate, KeyRange, SqlValue } from "@mycelium/sql";
import { coerceKeyValue, columnAffinity, compareKeyValues, type Affinity } from "./key-values";
import { evenHashRanges, hashKey } from "./key-hash";
import { getShardFunction } from "./shard-functions";

export interface TableSchema {
  table: string;
  columns: ColumnDef[];
  primaryKey: string[];
  ddl: string[];
  version: number;
}

/** A table's policy, shards and schema, with the lookups routing needs. Immutable. */
export class TableLayout {
  readonly shards: readonly common.ShardInfo[];
  private readonly keyAffinities: Affinity[];

  constructor(
    readonly policy: common.TablePolicy,
    shards: readonly common.ShardInfo[],
    readonly schema: TableSchema | null,
  ) {
    this.shards = shards
      .filter((shard) => shard.state !== common.ShardState.SHARD_STATE_RETIRED)
      .slice()
      .sort((a, b) => (this.isRange ? compareLowerBounds(a, b) : (a.keyRange?.hashStart ?? 0) - (b.keyRange?.hashStart ?? 0)));
    this.keyAffinities = policy.shardKeys.map((key) => {
      const column = schema?.columns.find((c) => c.name === key);
      return column ? columnAffinity(column.type) : "blob";
    });
  }

  get table(): string {
    return this.policy.table;
  }

  get isRange(): boolean {
    return this.policy.shardFunction === common.ShardFunction.SHARD_FUNCTION_RANGE;
  }

  /** The stored form of a shard key (per column), as the database will keep it. */
  coerceKey(values: readonly SqlValue[]): SqlValue[] {
    return values.map((value, i) => coerceKeyValue(value, this.keyAffinities[i] ?? "blob"));
  }

  /** The shard that holds (or will hold) the row with this shard key. */
  shardForKey(rawValues: readonly SqlValue[]): common.ShardInfo {
    const values = this.coerceKey(rawValues);
    if (this.isRange) {
      const key = values[0] ?? null;
      const shard = this.shards.find((s) => rangeContains(s.keyRange, key));
      if (!shard) throw new Error(`no shard of ${this.table} covers key ${String(key)} (shard map has a gap)`);
      return shard;
    }
    const hash = this.policy.shardFunction === common.ShardFunction.SHARD_FUNCTION_CUSTOM
      ? getShardFunction(this.policy.customFunction).hash(values)
      : hashKey(values);
    const shard = binarySearchHash(this.shards, hash);
    if (!shard) throw new Error(`no shard of ${this.table} covers hash ${hash} (shard map has a gap)`);
    return shard;
  }

  /** Every shard that may hold a row satisfying the predicate (a superset, never fewer). */
  shardsFor(predicate: KeyPredicate): common.ShardInfo[] {
    switch (predicate.kind) {
      case "all":
        return [...this.shards];
      case "none":
        return [];
      case "points": {
        const found = new Map<string, common.ShardInfo>();
        for (const point of predicate.values) {
          const shard = this.shardForKey(point);
          found.set(shard.shardId, shard);
        }
        return this.shards.filter((s) => found.has(s.shardId));
      }
      case "ranges":
        if (!this.isRange) return [...this.shards];
        return this.shards.filter((shard) => predicate.ranges.some((range) => rangeOverlaps(shard.keyRange, this.coerceRange(range))));
    }
  }

  private coerceRange(range: KeyRange): KeyRange {
    const affinity = this.keyAffinities[0] ?? "blob";
    return {
      ...(range.lower ? { lower: { value: coerceKeyValue(range.lower.value, affinity), inclusive: range.lower.inclusive } } : {}),
      ...(range.upper ? { upper: { value: coerceKeyValue(range.upper.value, affinity), inclusive: range.upper.inclusive } } : {}),
    };
  }
}

function binarySearchHash(shards: readonly common.ShardInfo[], hash: number): common.ShardInfo | undefined {
  let low = 0;
  let high = shards.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const range = shards[middle]!.keyRange!;
    if (hash < range.hashStart) high = middle - 1;
    else if (hash >= range.hashEnd) low = middle + 1;
    else return shards[middle];
  }
  return undefined;
}

function lowerBound(range: common.KeyRange | undefined): SqlValue | undefined {
  return range && !range.rangeStartUnbounded ? fromValue(range.rangeStart) : undefined;
}

function upperBound(range: common.KeyRange | undefined): SqlValue | undefined {
  return range && !range.rangeEndUnbounded ? fromValue(range.rangeEnd) : undefined;
}

function compareLowerBounds(a: common.ShardInfo, b: common.ShardInfo): number {
  const la = lowerBound(a.keyRange);
  const lb = lowerBound(b.keyRange);
  if (la === undefined) return lb === undefined ? 0 : -1;
  if (lb === undefined) return 1;
  return compareKeyValues(la, lb);
}

/** [start, end): start inclusive, end exclusive; NULL keys sort first and belong to the first shard. */
export function rangeContains(range: common.KeyRange | undefined, key: SqlValue): boolean {
  const start = lowerBound(range);
  const end = upperBound(range);
  if (start !== undefined && compareKeyValues(key, start) < 0) return false;
  if (end !== undefined && compareKeyValues(key, end) >= 0) return false;
  return true;
}

function rangeOverlaps(shardRange: common.KeyRange | undefined, range: KeyRange): boolean {
  const start = lowerBound(shardRange);
  const end = upperBound(shardRange);
  // Shard [start, end) misses the range when the range ends before start or begins at/after end.
  if (start !== undefined && range.upper) {
    const c = compareKeyValues(range.upper.value, start);
    if (c < 0 || (c === 0 && !range.upper.inclusive)) return false;
  }
  if (end !== undefined && range.lower) {
    if (compareKeyValues(range.lower.value, end) >= 0) return false;
  }
  return true;
}

/** Key ranges for a new table: even hash ranges, or the ranges between sorted split points. */
export function initialKeyRanges(policy: common.TablePolicy, shardCount: number): common.KeyRange[] {
  if (policy.shardFunction === common.ShardFunction.SHARD_FUNCTION_RANGE) {
    const points = policy.rangeSplitPoints.map(fromValue);
    const bounds: Array<SqlValue | undefined> = [undefined, ...points, undefined];
    const ranges: common.KeyRange[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const start = bounds[i];
      const end = bounds[i + 1];
      ranges.push(
        common.KeyRange.create({
          rangeStartUnbounded: start === undefined,
          rangeEndUnbounded: end === undefined,
          ...(start !== undefined ? { rangeStart: toValue(start) } : {}),
          ...(end !== undefined ? { rangeEnd: toValue(end) } : {}),
        }),
      );
    }
    return ranges;
  }
  return evenHashRanges(shardCount).map(({ start, end }) => common.KeyRange.create({ hashStart: start, hashEnd: end }));
}
