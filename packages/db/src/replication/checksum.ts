import * as crypto from "node:crypto";
import type { SqlValue } from "../sql-value";
import type { Row, RowChange } from "./types";

// The shard checksum is order-independent: the sum, modulo 2^128, of a 128-bit hash of every user row. A
// transaction moves it by subtracting the hashes of its rows' before images and adding those of their after
// images, so it is maintained per entry without scanning, and a full scan recomputes it from scratch.
//
// A row's hash is SHA-256 (first 128 bits) of a canonical text of (table, row) computed from the JS values, so
// both backends produce the same hash for the same logical row:
// - table and column names are lower-cased (PostgreSQL folds unquoted names, SQLite keeps them);
// - columns are sorted by name, and NULL columns are left out (adding a nullable column changes no hash);
// - integers are "i<decimal>" whether number or bigint, booleans are integers (SQLite has no boolean),
//   other numbers "r<shortest round-trip text>", text "t<text>", bytes "b<hex>".

export const checksumModulus = 1n << 128n;
export const zeroChecksum = 0n;

function canonicalValue(value: SqlValue): string {
  switch (typeof value) {
    case "number":
      return Number.isSafeInteger(value) ? `i${value}` : `r${String(value)}`;
    case "bigint":
      return `i${value.toString()}`;
    case "boolean":
      return value ? "i1" : "i0";
    case "string":
      return `t${value}`;
    default:
      return `b${Buffer.from((value as Uint8Array).buffer, (value as Uint8Array).byteOffset, (value as Uint8Array).byteLength).toString("hex")}`;
  }
}

export function rowHash(table: string, row: Row): bigint {
  const pairs: Array<[string, string]> = [];
  for (const name of Object.keys(row)) {
    const value = row[name]!;
    if (value === null) continue;
    pairs.push([name.toLowerCase(), canonicalValue(value)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return digest(JSON.stringify([table.toLowerCase(), pairs]));
}

const sha256: (data: string) => Buffer =
  typeof (crypto as { hash?: unknown }).hash === "function"
    ? (data) => (crypto as unknown as { hash(algorithm: string, data: string, encoding: "buffer"): Buffer }).hash("sha256", data, "buffer")
    : (data) => crypto.createHash("sha256").update(data).digest();

function digest(text: string): bigint {
  const bytes = sha256(text);
  return (bytes.readBigUInt64BE(0) << 64n) | bytes.readBigUInt64BE(8);
}

/** Column names in canonical order, per column list (scans and snapshots hash many rows of one shape). */
const shapes = new Map<string, { prefix: string; order: number[]; names: string[] }>();

/**
 * A row given as parallel column names and values; the same hash as rowHash, without building the row (the
 * canonical text is assembled directly: it is exactly JSON.stringify([table, pairs])).
 */
export function rowHashOf(table: string, columns: readonly string[], values: readonly SqlValue[]): bigint {
  const key = `${table}\u0000${columns.join("\u0000")}`;
  let shape = shapes.get(key);
  if (!shape) {
    const lowered = columns.map((column) => column.toLowerCase());
    const order = lowered.map((_, index) => index).sort((a, b) => (lowered[a]! < lowered[b]! ? -1 : lowered[a]! > lowered[b]! ? 1 : 0));
    shape = { prefix: `[${JSON.stringify(table.toLowerCase())},[`, order, names: lowered.map((name) => JSON.stringify(name)) };
    if (shapes.size >= 1000) shapes.clear();
    shapes.set(key, shape);
  }
  let text = shape.prefix;
  let first = true;
  for (const index of shape.order) {
    const value = values[index]!;
    if (value === null) continue;
    text += `${first ? "" : ","}[${shape.names[index]},${JSON.stringify(canonicalValue(value))}]`;
    first = false;
  }
  return digest(`${text}]]`);
}

export function addChecksum(a: bigint, b: bigint): bigint {
  return (a + b) % checksumModulus;
}

export function subtractChecksum(a: bigint, b: bigint): bigint {
  return (((a - b) % checksumModulus) + checksumModulus) % checksumModulus;
}

/** How much the checksum moves when these changes are applied (mod 2^128, non-negative). */
export function changesDelta(changes: readonly RowChange[]): bigint {
  let delta = 0n;
  for (const change of changes) {
    if (change.before) delta -= rowHash(change.table, change.before);
    if (change.op === "upsert" && change.row) delta += rowHash(change.table, change.row);
  }
  return ((delta % checksumModulus) + checksumModulus) % checksumModulus;
}

export function checksumToHex(value: bigint): string {
  return value.toString(16).padStart(32, "0");
}

export function checksumFromHex(text: string): bigint {
  if (!/^[0-9a-f]{1,32}$/.test(text)) throw new Error(`not a checksum: ${JSON.stringify(text)}`);
  return BigInt(`0x${text}`);
}
