import type { ExprValue, SqlValue } from "./types";
import { SqlError } from "./errors";

/**
 * Orders two non-null values of comparable types; undefined when the types are not comparable here
 * (number vs string, ...), in which case callers must not draw any conclusion.
 */
export function compareValues(a: SqlValue, b: SqlValue): number | undefined {
  if (a === null || b === null) return undefined;
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === "number" || ta === "bigint") && (tb === "number" || tb === "bigint")) {
    if (ta === tb) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    // Mixed number/bigint: compare exactly.
    const x = a as number | bigint;
    const y = b as number | bigint;
    if (typeof x === "number" && !Number.isFinite(x)) return x > 0 ? 1 : -1;
    if (typeof y === "number" && !Number.isFinite(y)) return y > 0 ? -1 : 1;
    if (typeof x === "number" && !Number.isInteger(x)) return compareBigintWithFraction(y as bigint, x) * -1;
    if (typeof y === "number" && !Number.isInteger(y)) return compareBigintWithFraction(x as bigint, y);
    const bx = BigInt(x);
    const by = BigInt(y);
    return bx < by ? -1 : bx > by ? 1 : 0;
  }
  if (ta === "string" && tb === "string") return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  if (ta === "boolean" && tb === "boolean") return Number(a) - Number(b);
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return a.length - b.length;
  }
  return undefined;
}

function compareBigintWithFraction(big: bigint, fraction: number): number {
  const floor = BigInt(Math.floor(fraction));
  return big <= floor ? -1 : 1;
}

export function valuesEqual(a: SqlValue, b: SqlValue): boolean {
  return compareValues(a, b) === 0;
}

/** A stable string key for a value, distinguishing types (used to de-duplicate points). */
export function valueKey(value: SqlValue): string {
  if (value === null) return "n";
  if (typeof value === "number") return Number.isInteger(value) ? `i${value}` : `f${value}`;
  if (typeof value === "bigint") return `i${value}`;
  if (typeof value === "string") return `s${value}`;
  if (typeof value === "boolean") return value ? "bt" : "bf";
  return `x${Buffer.from(value).toString("hex")}`;
}

/** Resolves a literal or `?` position to its value; undefined for DEFAULT and expressions. */
export function resolveValue(expr: ExprValue, params: readonly SqlValue[]): SqlValue | undefined {
  if (expr.kind === "value") return expr.value;
  if (expr.kind === "param") {
    if (expr.index >= params.length) {
      throw new SqlError(
        "PARAMETER_MISMATCH",
        `parameter ${expr.index + 1} is referenced but only ${params.length} parameter(s) were given`,
      );
    }
    return params[expr.index]!;
  }
  return undefined;
}

/** Renders a value as a SQL literal of the dialect (used for canonical expression text and rewrites). */
export function literalSql(value: SqlValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "string") return `'${value.split("'").join("''")}'`;
  return `X'${Buffer.from(value).toString("hex").toUpperCase()}'`;
}
