import { DbError } from "../db-error";

// Statements that would break the store's own transaction handling, escape the shard, or change connection
// settings the store relies on. The SQL analyser rejects them earlier with a nicer message; this is the
// storage layer's own guard (invariants are asserted on both sides of a boundary).
const forbiddenLeadingKeywords = new Set([
  "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE", "DEALLOCATE",
  "ATTACH", "DETACH", "PRAGMA", "SET", "RESET", "DISCARD", "VACUUM", "LISTEN", "UNLISTEN", "NOTIFY", "COPY",
  "CHECKPOINT",
]);

export function firstKeyword(sql: string): string {
  let index = 0;
  for (;;) {
    while (index < sql.length && /\s/.test(sql[index]!)) index += 1;
    if (sql.startsWith("--", index)) {
      const newline = sql.indexOf("\n", index);
      index = newline === -1 ? sql.length : newline + 1;
    } else if (sql.startsWith("/*", index)) {
      const end = sql.indexOf("*/", index + 2);
      index = end === -1 ? sql.length : end + 2;
    } else {
      break;
    }
  }
  const match = /^[A-Za-z]+/.exec(sql.slice(index, index + 32));
  return match ? match[0].toUpperCase() : "";
}

export function assertUserStatement(sql: string): void {
  if (typeof sql !== "string" || sql.trim() === "") throw new DbError("INVALID_ARGUMENT", "empty SQL statement");
  const keyword = firstKeyword(sql);
  if (forbiddenLeadingKeywords.has(keyword)) {
    throw new DbError("INVALID_ARGUMENT", `${keyword} statements are not allowed: the store manages transactions and connections itself`);
  }
  if (/_myc_/i.test(sql)) {
    throw new DbError("INVALID_ARGUMENT", "statements may not name Mycelium's internal tables (_myc_*)");
  }
}
