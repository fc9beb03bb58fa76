import { fromRow, type common, type SqlValue } from "@mycelium/proto";

/** The answer to one statement. */
export interface QueryResult {
  columns: string[];
  /** Rows as arrays, in column order. */
  rows: SqlValue[][];
  rowsAffected: number;
  lastInsertRowid: number;
}

export function toQueryResult(result: common.ResultSet | undefined): QueryResult {
  return {
    columns: result?.columns ?? [],
    rows: (result?.rows ?? []).map(fromRow),
    rowsAffected: result?.rowsAffected ?? 0,
    lastInsertRowid: result?.lastInsertRowid ?? 0,
  };
}

/** Rows as objects keyed by column name (later columns win on duplicate names). */
export function rowObjects(result: QueryResult): Array<Record<string, SqlValue>> {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((column, i) => [column, row[i] ?? null])));
}
