import type { router, SqlValue } from "@mycelium/proto";

export interface ShardRows {
  columns: string[];
  rows: SqlValue[][];
}

/**
 * Combine the rows of several shards into the answer of one statement, as the router's merge plan
 * says. Pure. (Concatenation only so far; the router refuses what this cannot merge exactly.)
 */
export function mergeResults(_plan: router.MergePlan | undefined, parts: readonly ShardRows[]): ShardRows {
  const columns = parts.find((part) => part.columns.length > 0)?.columns ?? [];
  return { columns, rows: parts.flatMap((part) => part.rows) };
}
