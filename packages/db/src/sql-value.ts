import { DbError } from "./db-error";

/**
 * One SQL value. Integers come back as `number` when within ±(2^53 − 1) and as `bigint` outside it, on both
 * backends, so no value loses precision and ordinary values stay plain numbers.
 */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

export interface Statement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

export interface StatementResult {
  /** Column names, in order; empty for a write without RETURNING. */
  columns: string[];
  rows: SqlValue[][];
  /** Rows inserted, updated or deleted; 0 for a read. */
  rowsAffected: number;
  /**
   * SQLite: the rowid of the row an INSERT/REPLACE without RETURNING created; otherwise null. PostgreSQL: always
   * null (use RETURNING).
   */
  lastInsertRowid: number | bigint | null;
}

const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
const minSafe = -maxSafe;

/** A 64-bit integer as the narrowest exact JS value. */
export function normalizeInteger(value: bigint): number | bigint {
  return value >= minSafe && value <= maxSafe ? Number(value) : value;
}

export function assertSqlValues(params: readonly unknown[]): asserts params is SqlValue[] {
  if (!Array.isArray(params)) throw new DbError("INVALID_ARGUMENT", "params must be an array");
  for (let index = 0; index < params.length; index += 1) {
    const value = params[index];
    if (
      value === null ||
      typeof value === "number" ||
      typeof value === "bigint" ||
      typeof value === "string" ||
      typeof value === "boolean" ||
      value instanceof Uint8Array
    ) {
      continue;
    }
    throw new DbError(
      "INVALID_ARGUMENT",
      `parameter ${index + 1} is ${value === undefined ? "undefined" : typeof value}; ` +
        "a SQL value is null, number, bigint, string, boolean or Uint8Array",
    );
  }
}

// Redo records keep each parameter's type exactly (JSON alone would turn bigint, bytes and booleans into
// something else, and a re-executed statement must bind the same values).
type EncodedValue = null | { n: number | string } | { b: string } | { s: string } | { t: boolean } | { x: string };

function encodeValue(value: SqlValue): EncodedValue {
  if (value === null) return null;
  switch (typeof value) {
    case "number":
      return { n: Number.isFinite(value) ? value : String(value) };
    case "bigint":
      return { b: value.toString() };
    case "string":
      return { s: value };
    case "boolean":
      return { t: value };
    default:
      return { x: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
}

function decodeValue(encoded: EncodedValue): SqlValue {
  if (encoded === null) return null;
  if ("n" in encoded) return typeof encoded.n === "number" ? encoded.n : Number(encoded.n);
  if ("b" in encoded) return BigInt(encoded.b);
  if ("s" in encoded) return encoded.s;
  if ("t" in encoded) return encoded.t;
  return new Uint8Array(Buffer.from(encoded.x, "base64"));
}

export function encodeStatements(statements: readonly Statement[]): string {
  return JSON.stringify(statements.map((statement) => ({ sql: statement.sql, params: statement.params.map(encodeValue) })));
}

export function decodeStatements(text: string): Statement[] {
  const parsed = JSON.parse(text) as Array<{ sql: string; params: EncodedValue[] }>;
  return parsed.map((statement) => ({ sql: statement.sql, params: statement.params.map(decodeValue) }));
}
