import type { Analysis, SqlValue } from "./types";
import { analyze, checkParameterCount, type AnalyzeOptions } from "./analyze";

export interface AnalysisCacheOptions {
  /** Most analyses kept; the least recently used is evicted. @default 10000 */
  maxEntries?: number;
}

export interface AnalysisCache {
  analyze(sql: string, options: AnalyzeOptions): Analysis;
  stats(): { hits: number; misses: number; size: number };
  clear(): void;
}

/**
 * An LRU of analyses keyed by (dialect, exact text). Analyses do not depend on parameter values, so a
 * parameterised statement is analysed once. Errors are not cached.
 */
export function createAnalysisCache(options: AnalysisCacheOptions = {}): AnalysisCache {
  const maxEntries = options.maxEntries ?? 10_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a positive integer, got ${String(options.maxEntries)}`);
  }
  const entries = new Map<string, Analysis>();
  let hits = 0;
  let misses = 0;
  return {
    analyze(sql: string, analyzeOptions: AnalyzeOptions): Analysis {
      const key = (analyzeOptions.dialect === "sqlite" ? "s" : "p") + sql;
      const cached = entries.get(key);
      if (cached) {
        hits++;
        entries.delete(key);
        entries.set(key, cached);
        if (analyzeOptions.params) checkParameterCount(cached, analyzeOptions.params as SqlValue[]);
        return cached;
      }
      misses++;
      const analysis = analyze(sql, analyzeOptions);
      entries.set(key, analysis);
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      return analysis;
    },
    stats: () => ({ hits, misses, size: entries.size }),
    clear: () => entries.clear(),
  };
}
