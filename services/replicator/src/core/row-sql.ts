import type { RowChange } from "@mycelium/db";
import type { SqlValue } from "@mycelium/proto";

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * A change-log entry's row changes as SQL both SQLite (3.24+) and PostgreSQL run: an upsert writes the
 * whole new row; a delete removes by key. Used to re-apply a returning primary's divergent transaction
 * on the current primary, where it becomes a new transaction in the log like any other.
 */
export function rowChangesToStatements(changes: readonly RowChange[]): Array<{ sql: string; params: SqlValue[] }> {
  return changes.map((change) => {
    const keyColumns = Object.keys(change.key);
    if (change.op === "delete") {
      return {
        sql: `DELETE FROM ${quote(change.table)} WHERE ${keyColumns.map((c) => `${quote(c)} = ?`).join(" AND ")}`,
        params: keyColumns.map((c) => change.key[c] ?? null),
      };
    }
    const row = change.row ?? {};
    const columns = Object.keys(row);
    const others = columns.filter((c) => !keyColumns.includes(c));
    const update = others.length > 0 ? `DO UPDATE SET ${others.map((c) => `${quote(c)} = excluded.${quote(c)}`).join(", ")}` : "DO NOTHING";
    return {
      sql: `INSERT INTO ${quote(change.table)} (${columns.map(quote).join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ON CONFLICT (${keyColumns.map(quote).join(", ")}) ${update}`,
      params: columns.map((c) => row[c] ?? null),
    };
  });
}
