import type { SqlValue } from "@mycelium/sql";

export type Affinity = "integer" | "text" | "blob" | "real" | "numeric";

/** SQLite's type affinity of a declared column type (https://sqlite.org/datatype3.html §3.1). */
export function columnAffinity(declaredType: string): Affinity {
  const type = declaredType.toUpperCase();
  if (type.includes("INT")) return "integer";
  if (type.includes("CHAR") || type.includes("CLOB") || type.includes("TEXT")) return "text";
  if (type === "" || type.includes("BLOB") || type.includes("BYTEA")) return "blob";
  if (type.includes("REAL") || type.includes("FLOA") || type.includes("DOUB")) return "real";
  return "numeric";
}

const integerText = /^\s*[+-]?\d+\s*$/;
const realText = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/**
 * The value a shard-key column will actually store, so routing hashes what the database keeps: in an
 * INTEGER column '42' and 42.0 are both 42; in a TEXT column 42 is '42'. (PostgreSQL converts literals
 * to the column type too, and fails where SQLite would keep text; either way the row lands where its
 * stored value hashes.)
 */
export function coerceKeyValue(value: SqlValue, affinity: Affinity): SqlValue {
  if (value === null) return null;
  switch (affinity) {
    case "integer":
    case "numeric":
    case "real": {
      if (typeof value === "boolean") return value ? 1 : 0;
      if (typeof value === "string") {
        if (integerText.test(value)) {
          const big = BigInt(value.trim());
          return Number.isSafeInteger(Number(big)) ? Number(big) : big;
        }
        if (realText.test(value)) return Number(value);
        return value;
      }
      return value;
    }
    case "text":
      if (typeof value === "number" || typeof value === "bigint") return String(value);
      if (typeof value === "boolean") return value ? "1" : "0";
      return value;
    case "blob":
      return value;
  }
}

/** SQLite's ordering of values: NULL, then numbers, then text, then blobs. */
export function compareKeyValues(a: SqlValue, b: SqlValue): number {
  const rank = (v: SqlValue) => (v === null ? 0 : typeof v === "string" ? 2 : v instanceof Uint8Array ? 3 : 1);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (a === null || b === null) return 0;
  if (ra === 1) {
    const na = typeof a === "boolean" ? Number(a) : a;
    const nb = typeof b === "boolean" ? Number(b) : b;
    if (typeof na === "bigint" || typeof nb === "bigint") {
      const ba = typeof na === "bigint" ? na : BigInt(Math.trunc(na as number));
      const bb = typeof nb === "bigint" ? nb : BigInt(Math.trunc(nb as number));
      if (ba !== bb) return ba < bb ? -1 : 1;
      return (Number(na) - Math.trunc(Number(na))) - (Number(nb) - Math.trunc(Number(nb)));
    }
    return (na as number) - (nb as number);
  }
  if (ra === 2) return compareCodePoints(a as string, b as string);
  return Buffer.compare(Buffer.from(a as Uint8Array), Buffer.from(b as Uint8Array));
}

/**
 * Text in code point order, which is SQLite's BINARY order (UTF-8 bytes). JavaScript's `<` compares UTF-16
 * units and puts U+E000..U+FFFF above characters beyond U+FFFF, which would misplace range-sharded keys.
 */
function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rankUnit(x) - rankUnit(y);
  }
  return a.length - b.length;
}

function rankUnit(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
