import type Database from "better-sqlite3";
import { DbError } from "../db-error";
import type { CaptureEvent } from "../replication/collapse";
import type { Row } from "../replication/types";
import { normalizeInteger, type SqlValue } from "../sql-value";

// Change capture on SQLite: three AFTER triggers per user table call `_myc_capture(table, op, values…)`, a
// function registered on the shard's writer connection only. It receives the row images as exact values
// (integers as bigint, blobs as bytes), so nothing is encoded in SQL, and appends them to the shard's capture
// buffer in memory; the commit path turns the buffer into one change-log entry inside the same transaction.
// A connection without the function (an operator's sqlite3 shell) cannot write captured tables at all, which
// is what we want: writes behind the log's back would silently diverge the replicas.
//
// `recursive_triggers` is on for the writer so REPLACE's implicit deletes fire the delete trigger (SQLite
// fires it only then), and capture triggers are dropped before user DDL runs and recreated after it (SQLite
// refuses DROP COLUMN of a column a trigger mentions, and renames would leave stale triggers).

export const captureFunctionName = "_myc_capture";
const triggerPrefix = "_myc_cap_";

export interface CapturedTable {
  name: string;
  /** Every stored column except generated ones, in table order. */
  columns: string[];
  /** The PRIMARY KEY columns in key order; empty when the table has none. */
  keyColumns: string[];
}

export class CaptureBuffer {
  /** False while the store applies replicated changes or runs DDL: nothing is recorded. */
  active = true;
  events: CaptureEvent[] = [];
  tables = new Map<string, CapturedTable>();

  reset(): void {
    this.events = [];
  }

  keyColumnsOf = (table: string): readonly string[] => this.tables.get(table)?.keyColumns ?? [];
}

export function quoteSqliteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteSqliteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function registerCaptureFunction(db: Database.Database, buffer: CaptureBuffer): void {
  db.function(captureFunctionName, { varargs: true, safeIntegers: true, deterministic: false }, (...args: unknown[]) => {
    if (!buffer.active) return null;
    const table = args[0] as string;
    const op = args[1] as string;
    const captured = buffer.tables.get(table);
    if (!captured) throw new DbError("INTERNAL", `capture trigger fired for unknown table ${table}`);
    const width = captured.columns.length;
    const expected = op === "U" ? 2 * width : width;
    if (args.length !== expected + 2) {
      throw new DbError("INTERNAL", `capture trigger for ${table} passed ${args.length - 2} values, expected ${expected}`);
    }
    const image = (offset: number): Row => {
      const row: Row = {};
      for (let index = 0; index < width; index += 1) row[captured.columns[index]!] = fromSqlite(args[offset + index]);
      return row;
    };
    if (op === "I") buffer.events.push({ table, old: null, new: image(2) });
    else if (op === "D") buffer.events.push({ table, old: image(2), new: null });
    else buffer.events.push({ table, old: image(2), new: image(2 + width) });
    return null;
  });
}

function fromSqlite(value: unknown): SqlValue {
  if (typeof value === "bigint") return normalizeInteger(value);
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  return value as SqlValue;
}

/** Every user table (not `_myc_*`, not `sqlite_*`) with its columns and primary key. */
export function readUserTables(db: Database.Database): CapturedTable[] {
  const names = db
    .prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_myc\\_%' ESCAPE '\\' " +
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
    )
    .pluck()
    .all() as string[];
  return names.map((name) => {
    const info = db.prepare("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid").all(name) as Array<{ name: string; pk: number }>;
    return {
      name,
      columns: info.map((column) => column.name),
      keyColumns: info
        .filter((column) => column.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((column) => column.name),
    };
  });
}

export function assertPrimaryKeys(tables: readonly CapturedTable[]): void {
  for (const table of tables) {
    if (table.keyColumns.length === 0) {
      throw new DbError("INVALID_ARGUMENT", `table ${table.name} has no PRIMARY KEY: replicated tables need a PRIMARY KEY`);
    }
  }
}

export function dropCapture(db: Database.Database): void {
  const triggers = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '\\_myc\\_cap\\_%' ESCAPE '\\'")
    .pluck()
    .all() as string[];
  for (const name of triggers) db.prepare(`DROP TRIGGER ${quoteSqliteIdentifier(name)}`).run();
}

export function installCapture(db: Database.Database, tables: readonly CapturedTable[]): void {
  for (const table of tables) {
    const name = quoteSqliteIdentifier(table.name);
    const literal = quoteSqliteLiteral(table.name);
    const values = (prefix: "NEW" | "OLD") => table.columns.map((column) => `${prefix}.${quoteSqliteIdentifier(column)}`).join(", ");
    const trigger = (kind: string) => quoteSqliteIdentifier(`${triggerPrefix}${kind}_${table.name}`);
    db.prepare(`CREATE TRIGGER ${trigger("i")} AFTER INSERT ON ${name} BEGIN SELECT ${captureFunctionName}(${literal}, 'I', ${values("NEW")}); END`).run();
    db.prepare(
      `CREATE TRIGGER ${trigger("u")} AFTER UPDATE ON ${name} BEGIN SELECT ${captureFunctionName}(${literal}, 'U', ${values("OLD")}, ${values("NEW")}); END`,
    ).run();
    db.prepare(`CREATE TRIGGER ${trigger("d")} AFTER DELETE ON ${name} BEGIN SELECT ${captureFunctionName}(${literal}, 'D', ${values("OLD")}); END`).run();
  }
}
