import type { Dialect, SqlValue } from "./types";
import { SqlError } from "./errors";
import { tokenize } from "./lexer";

/**
 * Translates statement text written for `from` into `to`. SQLite → PostgreSQL: `?` → `$1..$n` (outside strings,
 * quoted names and comments), `x` / [x] identifiers → "x", `==` → `=`. Same dialect: unchanged. Other SQLite-only
 * syntax (INSERT OR REPLACE, ...) is left as is and fails in PostgreSQL with its own error.
 */
export function toDialectSql(sql: string, from: Dialect, to: Dialect): string {
  if (from === to) return sql;
  if (from !== "sqlite" || to !== "postgres") throw new SqlError("UNSUPPORTED", `translation from ${from} to ${to} is not supported`);
  const tokens = tokenize(sql, "sqlite");
  let out = "";
  let at = 0;
  for (const token of tokens) {
    let replacement: string | undefined;
    if (token.type === "param") replacement = `$${token.param! + 1}`;
    else if (token.type === "quoted" && token.text[0] !== '"') {
      const inner = token.text[0] === "[" ? token.text.slice(1, -1) : token.text.slice(1, -1).split("``").join("`");
      replacement = `"${inner.split('"').join('""')}"`;
    } else if (token.type === "op" && token.text === "==") replacement = "=";
    if (replacement === undefined) continue;
    out += sql.slice(at, token.start) + replacement;
    at = token.end;
  }
  return out + sql.slice(at);
}

/**
 * Replaces each `?` with its parameter as a SQL literal of the dialect, for logs, EXPLAIN output and redo
 * records that must be self-contained. Throws PARAMETER_MISMATCH when the counts differ.
 */
export function bindParameters(sql: string, params: readonly SqlValue[], dialect: Dialect): string {
  const tokens = tokenize(sql, dialect);
  const placeholders = tokens.filter((t) => t.type === "param");
  if (placeholders.length !== params.length) {
    throw new SqlError(
      "PARAMETER_MISMATCH",
      `statement has ${placeholders.length} ? placeholder(s) but ${params.length} parameter(s) were given`,
    );
  }
  let out = "";
  let at = 0;
  for (const token of placeholders) {
    const literal = literalFor(params[token.param!]!, dialect);
    // A literal after an operator character could merge into a longer operator ("-" then "-1" is a comment).
    const before = sql.slice(at, token.start);
    out += before + (/[-+*/<>=~!@#%^&|`]$/.test(before) ? " " : "") + literal;
    at = token.end;
  }
  return out + sql.slice(at);
}

function literalFor(value: SqlValue, dialect: Dialect): string {
  if (value === null) return "NULL";
  if (typeof value === "boolean") return dialect === "sqlite" ? (value ? "1" : "0") : value ? "TRUE" : "FALSE";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new SqlError("UNSUPPORTED", `cannot write ${value} as a SQL literal`);
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") {
    if (dialect === "postgres" && value.includes("\u0000")) throw new SqlError("UNSUPPORTED", "PostgreSQL text cannot contain NUL characters");
    return `'${value.split("'").join("''")}'`;
  }
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value).toString("hex");
    return dialect === "sqlite" ? `X'${hex}'` : `'\\x${hex}'::bytea`;
  }
  throw new SqlError("UNSUPPORTED", `unsupported parameter type ${typeof value}`);
}
