import { router, type SqlValue } from "@mycelium/proto";
import { addCounts, average, extreme, SumAccumulator } from "./merge-aggregates";
import { satisfiesHaving } from "./merge-having";
import { mergeSortedStreams, rowComparator } from "./merge-sort";
import { rowKey } from "./merge-values";

export interface ShardRows {
  columns: string[];
  rows: SqlValue[][];
}

/**
 * Combine the rows of several shards into the answer of one statement, as the router's merge plan says
 * (see MergePlan in shard_router_service.proto for the steps). Pure. Without a plan the rows are
 * concatenated. A plan that does not fit the rows (widths, unsorted streams) is a bug and throws a plain
 * Error; a SUM that overflows 64 bits throws INVALID_ARGUMENT, as SQLite does.
 */
export function mergeResults(plan: router.MergePlan | undefined, parts: readonly ShardRows[]): ShardRows {
  const shardColumns = parts.find((part) => part.columns.length > 0)?.columns ?? [];
  if (!plan) return { columns: shardColumns, rows: parts.flatMap((part) => part.rows) };
  const width = shardColumns.length || (parts.find((part) => part.rows.length > 0)?.rows[0]?.length ?? 0);
  for (const part of parts) {
    if (part.columns.length > 0 && part.columns.length !== width) {
      throw new Error(`shards disagree on the result's columns (${part.columns.length} vs ${width})`);
    }
    for (const row of part.rows) if (row.length !== width) throw new Error(`a shard row has ${row.length} values, expected ${width}`);
  }
  const hidden = plan.hiddenColumnCount;
  if (hidden < 0 || hidden > width) throw new Error(`merge plan hides ${hidden} of ${width} columns`);

  const offset = Math.max(0, plan.offset);
  const end = plan.hasLimit && plan.limit >= 0 ? offset + plan.limit : Infinity;
  const compare = plan.orderBy.length > 0 ? rowComparator(plan.orderBy, width) : null;
  let rows: SqlValue[][];
  if (plan.aggregate) {
    rows = aggregate(plan, parts, width);
    if (plan.distinct) rows = distinctRows(rows, hidden, width, Infinity);
    if (compare) rows.sort(compare); // Array.prototype.sort is stable
    rows = rows.slice(offset, end);
  } else if (compare) {
    rows = mergeSortedStreams(parts.map((part) => part.rows), compare, end, plan.distinct ? (row) => rowKey(row, hidden, width) : null).slice(offset);
  } else {
    rows = parts.flatMap((part) => part.rows);
    if (plan.distinct) rows = distinctRows(rows, hidden, width, end);
    rows = rows.slice(offset, end);
  }

  const columns = shardColumns.slice(hidden);
  for (const column of plan.columns) {
    if (column.name && column.sourceIndex >= hidden && column.sourceIndex - hidden < columns.length) columns[column.sourceIndex - hidden] = column.name;
  }
  return { columns, rows: hidden > 0 ? rows.map((row) => row.slice(hidden)) : rows };
}

function distinctRows(rows: SqlValue[][], from: number, to: number, limit: number): SqlValue[][] {
  const seen = new Set<string>();
  const out: SqlValue[][] = [];
  for (const row of rows) {
    if (out.length >= limit) break;
    const key = rowKey(row, from, to);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(row);
  }
  return out;
}

interface Group {
  values: SqlValue[];
  sums: Map<number, SumAccumulator>;
}

/** Groups rows by the GROUP BY columns, combines each column's partial values, then applies HAVING. */
function aggregate(plan: router.MergePlan, parts: readonly ShardRows[], width: number): SqlValue[][] {
  if (plan.columns.length !== width) throw new Error(`merge plan describes ${plan.columns.length} columns of a ${width}-column row`);
  const kinds = plan.columns.map((column) => column.aggregate);
  for (const index of plan.groupBy) if (index < 0 || index >= width) throw new Error(`GROUP BY column ${index} is outside the row`);
  const groups = new Map<string, Group>();
  for (const part of parts) {
    for (const row of part.rows) {
      const key = plan.groupBy.map((index) => rowKey(row, index, index + 1)).join("|");
      let group = groups.get(key);
      if (!group) {
        group = { values: row.slice(), sums: new Map() };
        kinds.forEach((kind, i) => {
          if (kind === router.AggregateKind.AGGREGATE_KIND_SUM || kind === router.AggregateKind.AGGREGATE_KIND_AVG) {
            const sum = new SumAccumulator();
            sum.add(row[i]!);
            group!.sums.set(i, sum);
          } else if (kind === router.AggregateKind.AGGREGATE_KIND_COUNT) {
            group!.values[i] = addCounts(row[i]!, 0);
          }
        });
        groups.set(key, group);
        continue;
      }
      kinds.forEach((kind, i) => {
        switch (kind) {
          case router.AggregateKind.AGGREGATE_KIND_COUNT:
            group!.values[i] = addCounts(group!.values[i]!, row[i]!);
            break;
          case router.AggregateKind.AGGREGATE_KIND_SUM:
          case router.AggregateKind.AGGREGATE_KIND_AVG:
            group!.sums.get(i)!.add(row[i]!);
            break;
          case router.AggregateKind.AGGREGATE_KIND_MIN:
            group!.values[i] = extreme(group!.values[i]!, row[i]!, "min");
            break;
          case router.AggregateKind.AGGREGATE_KIND_MAX:
            group!.values[i] = extreme(group!.values[i]!, row[i]!, "max");
            break;
          case router.AggregateKind.AGGREGATE_KIND_NONE:
            break; // a GROUP BY key: equal in every row of the group
          default:
            throw new Error(`merge plan column ${i} has aggregate kind ${kind}`);
        }
      });
    }
  }
  const out: SqlValue[][] = [];
  for (const group of groups.values()) {
    const row = group.values;
    kinds.forEach((kind, i) => {
      if (kind === router.AggregateKind.AGGREGATE_KIND_SUM) row[i] = group.sums.get(i)!.result("error");
    });
    kinds.forEach((kind, i) => {
      if (kind !== router.AggregateKind.AGGREGATE_KIND_AVG) return;
      const countIndex = plan.columns[i]!.countIndex;
      if (kinds[countIndex] !== router.AggregateKind.AGGREGATE_KIND_COUNT) throw new Error(`AVG column ${i} takes its count from column ${countIndex}, which is not a COUNT`);
      row[i] = average(group.sums.get(i)!.result("real"), row[countIndex]!);
    });
    if (plan.having && !satisfiesHaving(plan.having, row)) continue;
    out.push(row);
  }
  return out;
}
