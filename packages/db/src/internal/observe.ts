import { performance } from "node:perf_hooks";
import { DbError, type DbErrorCode } from "../db-error";
import type { QueryObserver, QueryOperation } from "../shard-store";

export interface QueryCounters {
  queryCount: number;
  queryErrorCount: number;
}

/** Times `run`, counts it, and tells the observer. The observer can never break the operation. */
export async function observed<T>(
  observer: QueryObserver | undefined,
  counters: QueryCounters,
  operation: QueryOperation,
  shardId: string,
  run: () => Promise<T> | T,
): Promise<T> {
  const start = performance.now();
  let errorCode: DbErrorCode | null = null;
  counters.queryCount += 1;
  try {
    return await run();
  } catch (error) {
    counters.queryErrorCount += 1;
    errorCode = error instanceof DbError ? error.code : "INTERNAL";
    throw error;
  } finally {
    if (observer) {
      try {
        observer({ operation, shardId, durationMs: performance.now() - start, errorCode });
      } catch {
        // telemetry never throws
      }
    }
  }
}
