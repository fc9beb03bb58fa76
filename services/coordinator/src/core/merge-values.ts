import type { SqlValue } from "@mycelium/proto";

/**
 * How SQLite orders values (https://sqlite.org/datatype3.html §4.1), which ORDER BY, MIN/MAX and
 * comparisons follow when no affinity applies: NULL, then numbers (integers and reals compared exactly),
 * then text (BINARY collation: UTF-8 bytes, i.e. code points), then blobs (bytes). PostgreSQL's booleans
 * sort with numbers (false < true); they never meet numbers in one column there.
 */
export function compareSqlValues(a: SqlValue, b: SqlValue): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return 0;
    case 1: {
      const x = typeof a === "boolean" ? Number(a) : (a as number | bigint);
      const y = typeof b === "boolean" ? Number(b) : (b as number | bigint);
      // `<` between a bigint and a number is exact in JavaScript.
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 2:
      return compareText(a as string, b as string);
    default:
      return compareBytes(a as Uint8Array, b as Uint8Array);
  }
}

function rank(value: SqlValue): number {
  if (value === null) return 0;
  switch (typeof value) {
    case "number":
    case "bigint":
    case "boolean":
      return 1;
    case "string":
      return 2;
    default:
      return 3;
  }
}

/**
 * Code point order, which is the byte order of UTF-8 (SQLite's BINARY collation, PostgreSQL's "C"). Plain
 * `<` compares UTF-16 units, which puts U+E000..U+FFFF after characters beyond U+FFFF; shift the units so
 * surrogates sort above them.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * A string equal for values SQL treats as the same in GROUP BY and DISTINCT: 1, 1.0 and 1n are one value,
 * '1' is another, all NULLs are one group.
 */
export function valueKey(value: SqlValue): string {
  if (value === null) return "n";
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) ? `i${BigInt(value)}` : `r${value}`;
    case "bigint":
      return `i${value}`;
    case "boolean":
      return value ? "t" : "f";
    case "string":
      return `s${value}`;
    default:
      return `x${Buffer.from(value).toString("hex")}`;
  }
}

export function rowKey(row: readonly SqlValue[], from: number, to: number): string {
  let key = "";
  for (let i = from; i < to; i++) {
    const part = valueKey(row[i] ?? null);
    key += `${part.length}:${part}`;
  }
  return key;
}
