import { DbError } from "../db-error";

/**
 * Maps a better-sqlite3 error to a DbError. SQLite reports most statement problems as the generic
 * SQLITE_ERROR, so the message is the only way to tell "no such table" and "already exists" apart; this is the
 * one place that reads message text, at the backend boundary.
 */
export function toDbError(error: unknown, context: string): DbError {
  if (error instanceof DbError) return error;
  const err = error as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(error);
  const code = typeof err?.code === "string" ? err.code : undefined;
  const text = `${context}: ${message}`;
  const make = (dbCode: ConstructorParameters<typeof DbError>[0]) =>
    new DbError(dbCode, text, { cause: error, ...(code ? { backendCode: code } : {}) });

  if (code === undefined) {
    // better-sqlite3's own argument errors (RangeError/TypeError): wrong parameter count, several statements.
    // (by name: errors from a native addon may come from another realm, e.g. under Jest)
    const name = (error as { name?: unknown })?.name;
    if (name === "RangeError" || name === "TypeError") return make("SYNTAX");
    return make("INTERNAL");
  }
  if (code.startsWith("SQLITE_CONSTRAINT") || code === "SQLITE_MISMATCH") return make("CONSTRAINT");
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return make("BUSY");
  if (
    code.startsWith("SQLITE_IOERR") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_CORRUPT") ||
    code.startsWith("SQLITE_READONLY") ||
    code === "SQLITE_FULL" ||
    code === "SQLITE_NOTADB" ||
    code === "SQLITE_NOMEM"
  ) {
    return make("IO");
  }
  if (code === "SQLITE_ERROR" || code === "SQLITE_RANGE" || code === "SQLITE_TOOBIG") {
    if (/no such table/i.test(message)) return make("NO_SUCH_TABLE");
    if (/already exists|duplicate column name/i.test(message)) return make("ALREADY_EXISTS");
    return make("SYNTAX");
  }
  return make("INTERNAL");
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}
