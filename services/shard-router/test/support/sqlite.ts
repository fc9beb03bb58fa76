import { createRequire } from "node:module";
import * as path from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { SqlValue } from "@mycelium/sql";

// better-sqlite3 is a dev dependency of @mycelium/sql, not (yet) of the shard-router; borrow it from there
// rather than touch this package's manifest. TODO: add it to the shard-router's devDependencies.
const requireFromSql = createRequire(path.join(__dirname, "../../../../packages/sql/package.json"));
const Database = requireFromSql("better-sqlite3") as typeof BetterSqlite3;

export type SqliteDatabase = BetterSqlite3.Database;

export function openMemoryDatabase(): SqliteDatabase {
  return new Database(":memory:");
}

/** Runs a read the way the node-agent does: raw rows, integers as bigint beyond 2^53, column names. */
export function readRows(db: SqliteDatabase, sql: string, params: readonly SqlValue[]): { columns: string[]; rows: SqlValue[][] } {
  const statement = db.prepare(sql);
  statement.safeIntegers(true);
  statement.raw(true);
  const rows = (statement.all(...params.map(bindable)) as unknown[][]).map((row) => row.map(fromSqlite));
  return { columns: statement.columns().map((c) => c.name), rows };
}

function bindable(value: SqlValue): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Uint8Array) return Buffer.from(value);
  return value;
}

function fromSqlite(value: unknown): SqlValue {
  if (typeof value === "bigint") return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  return value as SqlValue;
}
