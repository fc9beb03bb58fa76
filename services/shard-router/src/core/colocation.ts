import { common, fromValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { occurrenceKeyPredicate, type Analysis, type SqlValue } from "@mycelium/sql";
import { columnAffinity, compareKeyValues } from "./key-values";
import type { TableLayout } from "./table-layout";

/**
 * A reference table is small and everywhere: replication_factor 1.0 (a copy on every eligible node) and a
 * single shard. A statement may read it next to any sharded table, because every node running a shard of
 * the other table also holds the whole reference table.
 */
export function isReferenceTable(layout: TableLayout): boolean {
  return layout.policy.replicationFactor === 1 && layout.shards.length === 1;
}

/**
 * Checks that sharded tables can be joined shard by shard: one colocation group, the same shard function,
 * shard-key types, shard count and key ranges, and shard i of every table on the same nodes with the same
 * primary. Throws NOT_COLOCATED (the statement is wrong) or COLOCATION_MISMATCH (the cluster is, for now).
 */
export function checkColocated(layouts: readonly TableLayout[]): void {
  if (layouts.length < 2) return;
  const [first, ...rest] = layouts as [TableLayout, ...TableLayout[]];
  const group = first.policy.colocationGroup || first.table;
  for (const other of rest) {
    const otherGroup = other.policy.colocationGroup || other.table;
    if (otherGroup !== group) {
      throw new MyceliumError(
        "INVALID_ARGUMENT",
        `tables ${first.table} (colocation group ${group}) and ${other.table} (group ${otherGroup}) are not co-located, so their rows with equal keys may be on different nodes; ` +
          `join them only if they share a colocation_group (or one is a reference table), or query them separately`,
        { reason: "NOT_COLOCATED", details: { tables: `${first.table},${other.table}` } },
      );
    }
  }
  const mismatch = (message: string): MyceliumError =>
    new MyceliumError("FAILED_PRECONDITION", `colocation group ${group} is inconsistent: ${message}; joins in it are refused until rebalancing aligns its tables`, {
      reason: "COLOCATION_MISMATCH",
      details: { group },
    });
  for (const other of rest) {
    const a = first.policy;
    const b = other.policy;
    if (a.shardFunction !== b.shardFunction || a.customFunction !== b.customFunction) {
      throw mismatch(`${first.table} and ${other.table} use different shard functions`);
    }
    if (a.shardKeys.length !== b.shardKeys.length) {
      throw mismatch(`${first.table} has ${a.shardKeys.length} shard key column(s) and ${other.table} ${b.shardKeys.length}`);
    }
    a.shardKeys.forEach((key, i) => {
      const typeA = declaredType(first, key);
      const typeB = declaredType(other, b.shardKeys[i]!);
      if (columnAffinity(typeA) !== columnAffinity(typeB)) {
        throw mismatch(`shard key ${first.table}.${key} (${typeA || "no type"}) and ${other.table}.${b.shardKeys[i]} (${typeB || "no type"}) have different types, so equal keys may be stored differently and hash apart`);
      }
    });
    if (first.shards.length !== other.shards.length) {
      throw mismatch(`${first.table} has ${first.shards.length} shards and ${other.table} ${other.shards.length}`);
    }
    first.shards.forEach((shard, i) => {
      const peer = other.shards[i]!;
      if (!sameKeyRange(shard.keyRange, peer.keyRange)) {
        throw mismatch(`shard ${shard.shardId} and ${peer.shardId} own different key ranges`);
      }
      if (shard.primaryNodeId !== peer.primaryNodeId || !sameSet(shard.replicaNodeIds, peer.replicaNodeIds)) {
        throw mismatch(
          `shard ${shard.shardId} is on [${shard.replicaNodeIds.join(", ")}] (primary ${shard.primaryNodeId}) but ${peer.shardId} is on [${peer.replicaNodeIds.join(", ")}] (primary ${peer.primaryNodeId})`,
        );
      }
    });
  }
}

function declaredType(layout: TableLayout, column: string): string {
  return layout.schema?.columns.find((c) => c.name === column)?.type ?? "";
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

function sameKeyRange(a: common.KeyRange | undefined, b: common.KeyRange | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.hashStart !== b.hashStart || a.hashEnd !== b.hashEnd) return false;
  if (a.rangeStartUnbounded !== b.rangeStartUnbounded || a.rangeEndUnbounded !== b.rangeEndUnbounded) return false;
  const same = (x: common.Value | undefined, y: common.Value | undefined) => compareKeyValues(fromValue(x), fromValue(y)) === 0;
  return (a.rangeStartUnbounded || same(a.rangeStart, b.rangeStart)) && (a.rangeEndUnbounded || same(a.rangeEnd, b.rangeEnd));
}

export interface ShardedOccurrences {
  /** Indexes into analysis.occurrences of the sharded (non-reference) tables. */
  all: number[];
  /** Those that every result row has a row of (not on the NULL-extended side of an outer join). */
  required: number[];
}

export function shardedOccurrences(analysis: Analysis, isSharded: (table: string) => boolean): ShardedOccurrences {
  const all = analysis.occurrences.flatMap((occ, i) => (isSharded(occ.table) ? [i] : []));
  const nullable = new Set<number>();
  for (const join of analysis.joins) {
    if (join.type === "left" || join.type === "full") join.rightOccurrences.forEach((i) => nullable.add(i));
    if (join.type === "right" || join.type === "full") join.leftOccurrences.forEach((i) => nullable.add(i));
  }
  return { all, required: all.filter((i) => !nullable.has(i)) };
}

/**
 * Why the sharded occurrences cannot be run shard by shard (null when they can): each must be in the
 * top-level FROM, and they must be connected by joins that equate their whole shard keys, so every result
 * row is made of rows with one key, which live on one shard of the group.
 */
export function keyJoinProblem(analysis: Analysis, occurrences: readonly number[], layoutOf: (table: string) => TableLayout): string | null {
  const nested = occurrences.find((i) => analysis.occurrences[i]!.nested);
  if (nested !== undefined) {
    const table = analysis.occurrences[nested]!.table;
    return `a subquery reads sharded table ${table}, and on each shard it would see only that shard's rows`;
  }
  const parent = new Map<number, number>(occurrences.map((i) => [i, i]));
  const find = (i: number): number => {
    while (parent.get(i) !== i) i = parent.get(i)!;
    return i;
  };
  const equated = new Map<string, Set<number>>();
  for (const join of analysis.joins) {
    for (const [l, r] of join.on) {
      if (!parent.has(l.occurrence) || !parent.has(r.occurrence) || l.occurrence === r.occurrence) continue;
      const lKey = layoutOf(l.table).policy.shardKeys.indexOf(l.column);
      const rKey = layoutOf(r.table).policy.shardKeys.indexOf(r.column);
      if (lKey === -1 || lKey !== rKey) continue;
      const pair = l.occurrence < r.occurrence ? `${l.occurrence}:${r.occurrence}` : `${r.occurrence}:${l.occurrence}`;
      const keys = equated.get(pair) ?? new Set<number>();
      keys.add(lKey);
      equated.set(pair, keys);
      if (keys.size === layoutOf(l.table).policy.shardKeys.length) parent.set(find(l.occurrence), find(r.occurrence));
    }
  }
  const roots = new Set(occurrences.map(find));
  if (roots.size <= 1) return null;
  const describe = (i: number) => {
    const occ = analysis.occurrences[i]!;
    return occ.alias === occ.table ? occ.table : `${occ.table} ${occ.alias}`;
  };
  const [a, b] = [...roots];
  const keysOf = (i: number) => layoutOf(analysis.occurrences[i]!.table).policy.shardKeys.join(", ");
  return `${describe(a!)} and ${describe(b!)} are not joined on their shard keys (${keysOf(a!)} = ${keysOf(b!)}), so matching rows may be on different shards`;
}

/** The shard positions (indexes into the group's shard list) each occurrence may touch. */
export function occurrencePositions(
  analysis: Analysis,
  occurrence: number,
  layout: TableLayout,
  params: readonly SqlValue[],
): Set<number> {
  const predicate = occurrenceKeyPredicate(analysis, occurrence, layout.policy.shardKeys, params);
  const ids = new Set(layout.shardsFor(predicate).map((shard) => shard.shardId));
  const positions = new Set<number>();
  layout.shards.forEach((shard, i) => ids.has(shard.shardId) && positions.add(i));
  return positions;
}
