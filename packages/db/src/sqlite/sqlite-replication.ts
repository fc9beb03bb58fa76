import type Database from "better-sqlite3";
import { DbError } from "../db-error";
import { addChecksum, changesDelta, checksumFromHex, checksumToHex, rowHashOf, subtractChecksum } from "../replication/checksum";
import { approximateSize, encodeChanges } from "../replication/codec";
import type { ChangeEntry, Row, SnapshotChunk, SnapshotTable } from "../replication/types";
import { ddlOnlyCreates, maxSnapshotBytes, maxSnapshotRows, resolveName } from "../replication/validate";
import type { SqlValue } from "../sql-value";
import {
  assertPrimaryKeys,
  type CaptureBuffer,
  type CapturedTable,
  dropCapture,
  installCapture,
  quoteSqliteIdentifier,
  readUserTables,
} from "./sqlite-capture";
import { type ChangeLogStatements, fromSqlite, type ReplicaPosition, scanChecksum } from "./sqlite-change-log";
import { SqliteConnection } from "./sqlite-connection";
import { toDbError } from "./sqlite-errors";

// Replication work that runs inside a SQLite shard's write transaction (the caller holds the write lock and has
// begun the transaction): schema changes with capture reinstalled, applying entries, restoring a snapshot; and
// the read side that runs on a dedicated read-only connection (snapshots, checksum verification).

export interface SchemaChangeResult {
  tables: CapturedTable[];
  /** How much the checksum moved because the statements changed rows (ALTER … DEFAULT, DROP TABLE, …). */
  delta: bigint;
}

/**
 * Runs schema statements with capture dropped around them (SQLite refuses DROP COLUMN of a column a trigger
 * names), checks every table has a primary key, reinstalls capture, and measures the rows' checksum before and
 * after unless the statements only create.
 */
export function runSchemaChange(
  db: Database.Database,
  ddl: readonly string[],
  capture: boolean,
  /** Names statement n (1-based) in errors, e.g. "schema statement 2 on shard users-0001". */
  context: (statementNumber: number) => string,
): SchemaChangeResult {
  const rescan = capture && !ddlOnlyCreates(ddl);
  const before = rescan ? scanChecksum(db, readUserTables(db)) : 0n;
  dropCapture(db);
  ddl.forEach((statement, index) => {
    try {
      db.prepare(statement).run();
    } catch (error) {
      throw toDbError(error, context(index + 1));
    }
  });
  const tables = readUserTables(db);
  if (capture) {
    assertPrimaryKeys(tables);
    installCapture(db, tables);
  }
  const after = rescan ? scanChecksum(db, tables) : 0n;
  return { tables, delta: subtractChecksum(after, before) };
}

/** Reverses capture-buffer table metadata for lookups by name. */
export function tableMap(tables: readonly CapturedTable[]): Map<string, CapturedTable> {
  return new Map(tables.map((table) => [table.name, table]));
}

function bindable(value: SqlValue): number | bigint | string | Uint8Array | null {
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

function resolveTable(tables: Map<string, CapturedTable>, name: string, lsn: number): CapturedTable {
  const resolved = resolveName(tables.keys(), name);
  if (resolved === undefined) throw new DbError("NO_SUCH_TABLE", `entry ${lsn} changes table ${name}, which this replica does not have`);
  return tables.get(resolved)!;
}

function resolveColumns(table: CapturedTable, row: Row, lsn: number): { columns: string[]; values: SqlValue[] } {
  const columns: string[] = [];
  const values: SqlValue[] = [];
  for (const name of Object.keys(row)) {
    const column = resolveName(table.columns, name);
    if (column === undefined) throw new DbError("SYNTAX", `entry ${lsn} sets column ${table.name}.${name}, which this replica does not have`);
    columns.push(column);
    values.push(row[name]!);
  }
  return { columns, values };
}

/**
 * Applies entries (consecutive, following `working.headLsn`) inside the open write transaction with capture off
 * and foreign keys off (the origin enforced them; replaying its net changes in any order must not cascade).
 * Upserts are INSERT OR REPLACE: a row that conflicts on another unique column is replaced, and since the
 * origin's final rows are mutually consistent, whatever it displaces is itself rewritten later in the batch.
 */
export function applyEntries(
  db: Database.Database,
  log: ChangeLogStatements,
  capture: CaptureBuffer,
  working: ReplicaPosition,
  entries: readonly ChangeEntry[],
  captureEnabled: boolean,
  shardId: string,
): { tables: Map<string, CapturedTable> } {
  let tables = new Map(capture.tables);
  for (const entry of entries) {
    if (entry.ddl) {
      log.appendSchemaLog(entry.ddl);
      const result = runSchemaChange(db, entry.ddl, captureEnabled, (n) => `replicated schema statement ${n} (lsn ${entry.lsn}) on shard ${shardId}`);
      tables = tableMap(result.tables);
      working.checksum = addChecksum(working.checksum, result.delta);
    } else {
      for (const change of entry.changes) {
        const table = resolveTable(tables, change.table, entry.lsn);
        if (change.op === "upsert") {
          const { columns, values } = resolveColumns(table, change.row!, entry.lsn);
          const sql =
            `INSERT OR REPLACE INTO ${quoteSqliteIdentifier(table.name)} (${columns.map(quoteSqliteIdentifier).join(", ")}) ` +
            `VALUES (${columns.map(() => "?").join(", ")})`;
          run(log, sql, values, entry.lsn);
        } else {
          const { columns, values } = resolveColumns(table, change.key, entry.lsn);
          const sql = `DELETE FROM ${quoteSqliteIdentifier(table.name)} WHERE ${columns.map((column) => `${quoteSqliteIdentifier(column)} IS ?`).join(" AND ")}`;
          run(log, sql, values, entry.lsn);
        }
      }
      working.checksum = addChecksum(working.checksum, changesDelta(entry.changes));
    }
    const reached = checksumToHex(working.checksum);
    if (reached !== entry.checksum) {
      throw new DbError(
        "REPLICA_DIVERGED",
        `shard ${shardId}: after entry ${entry.lsn} this replica's checksum is ${reached}, the origin's ${entry.checksum}`,
      );
    }
    log.insertEntry(entry, encodeChanges(entry.changes));
    if (entry.txId !== null) {
      log.statement("INSERT OR IGNORE INTO _myc_txn (tx_id, prepared_at_ms) VALUES (?, ?)").run(entry.txId, entry.committedAtMs);
    }
    if ((working.versionVector.get(entry.origin) ?? 0) < entry.originSeq) {
      working.versionVector.set(entry.origin, entry.originSeq);
      working.dirtyOrigins.add(entry.origin);
    }
    working.epoch = Math.max(working.epoch, entry.epoch);
    working.headLsn = entry.lsn;
  }
  return { tables };
}

function run(log: ChangeLogStatements, sql: string, values: readonly SqlValue[], lsn: number): void {
  try {
    log.statement(sql).run(...values.map(bindable));
  } catch (error) {
    throw toDbError(error, `applying entry ${lsn}`);
  }
}

/** Drops every user object (tables with their indexes, views, triggers) and clears the change-log tables. */
export function clearShard(db: Database.Database): void {
  dropCapture(db);
  const objects = db
    .prepare(
      "SELECT type, name FROM sqlite_schema WHERE type IN ('view', 'trigger', 'table') AND name NOT LIKE '\\_myc\\_%' ESCAPE '\\' " +
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY CASE type WHEN 'trigger' THEN 0 WHEN 'view' THEN 1 ELSE 2 END",
    )
    .all() as Array<{ type: string; name: string }>;
  for (const object of objects) db.prepare(`DROP ${object.type.toUpperCase()} IF EXISTS ${quoteSqliteIdentifier(object.name)}`).run();
  for (const table of ["_myc_changes", "_myc_vv", "_myc_schema_log", "_myc_txn"]) db.prepare(`DELETE FROM ${table}`).run();
}

/** Inserts one chunk of snapshot rows; returns their hash sum. */
export function insertSnapshotRows(
  log: ChangeLogStatements,
  tables: Map<string, CapturedTable>,
  chunk: Extract<SnapshotChunk, { kind: "rows" }>,
): bigint {
  const table = resolveTable(tables, chunk.table, 0);
  const columns = chunk.columns.map((name) => {
    const column = resolveName(table.columns, name);
    if (column === undefined) throw new DbError("SYNTAX", `snapshot has column ${table.name}.${name}, which the restored schema does not`);
    return column;
  });
  const sql =
    `INSERT INTO ${quoteSqliteIdentifier(table.name)} (${columns.map(quoteSqliteIdentifier).join(", ")}) ` +
    `VALUES (${columns.map(() => "?").join(", ")})`;
  let sum = 0n;
  for (const values of chunk.rows) {
    run(log, sql, values, 0);
    sum += rowHashOf(chunk.table, chunk.columns, values);
  }
  return sum;
}

/**
 * The shard as chunks, from one read transaction on a connection of its own (so reads through the store's
 * reader connection keep seeing the latest commits, and the writer keeps writing). Yields to the event loop
 * between chunks.
 */
export async function* snapshotChunks(file: string, shardId: string, epochFloor: number): AsyncGenerator<SnapshotChunk> {
  const connection = new SqliteConnection(file, {
    create: false,
    synchronous: "NORMAL",
    queryOnly: true,
    statementCacheSize: 0,
    counters: { hits: 0, misses: 0 },
  });
  const db = connection.db;
  let iterator: IterableIterator<unknown[]> | undefined;
  try {
    db.prepare("BEGIN").run();
    // The first read fixes the snapshot: everything below sees the same committed state.
    const position = db.prepare("SELECT head_lsn, epoch, checksum FROM _myc_replica WHERE id = 1").get() as {
      head_lsn: number;
      epoch: number;
      checksum: string;
    };
    const vector = Object.fromEntries(
      (db.prepare("SELECT origin, seq FROM _myc_vv ORDER BY origin").all() as Array<{ origin: string; seq: number }>).map((row) => [
        row.origin,
        Number(row.seq),
      ]),
    );
    const ddl = (db.prepare("SELECT ddl FROM _myc_schema_log ORDER BY seq").all() as Array<{ ddl: string }>).map((row) => row.ddl);
    const tables = readUserTables(db);
    const described: SnapshotTable[] = tables.map((table) => ({ name: table.name, columns: table.columns, keyColumns: table.keyColumns }));
    yield {
      kind: "begin",
      formatVersion: 1,
      shardId,
      lsn: Number(position.head_lsn),
      epoch: Math.max(Number(position.epoch), epochFloor),
      versionVector: vector,
      checksum: checksumToHex(checksumFromHex(position.checksum)),
      ddl,
      tables: described,
    };
    let rowCount = 0;
    for (const table of tables) {
      const statement = db.prepare(`SELECT ${table.columns.map(quoteSqliteIdentifier).join(", ")} FROM ${quoteSqliteIdentifier(table.name)}`);
      statement.safeIntegers(true);
      statement.raw(true);
      iterator = statement.iterate() as IterableIterator<unknown[]>;
      let rows: SqlValue[][] = [];
      let bytes = 0;
      for (const raw of iterator) {
        const values = raw.map(fromSqlite);
        rows.push(values);
        for (const value of values) bytes += approximateSize(value);
        if (rows.length >= maxSnapshotRows || bytes >= maxSnapshotBytes) {
          rowCount += rows.length;
          yield { kind: "rows", table: table.name, columns: table.columns, rows };
          rows = [];
          bytes = 0;
        }
      }
      iterator = undefined;
      if (rows.length > 0) {
        rowCount += rows.length;
        yield { kind: "rows", table: table.name, columns: table.columns, rows };
      }
    }
    const markers = (db.prepare("SELECT tx_id, prepared_at_ms FROM _myc_txn ORDER BY tx_id").all() as Array<{ tx_id: string; prepared_at_ms: number }>).map(
      (row) => ({ txId: row.tx_id, preparedAtMs: Number(row.prepared_at_ms) }),
    );
    for (let index = 0; index < markers.length; index += maxSnapshotRows) {
      yield { kind: "markers", markers: markers.slice(index, index + maxSnapshotRows) };
    }
    yield { kind: "end", rowCount, markerCount: markers.length };
  } catch (error) {
    throw toDbError(error, `snapshot of shard ${shardId}`);
  } finally {
    iterator?.return?.();
    if (db.inTransaction) db.prepare("COMMIT").run();
    connection.close();
  }
}

/** The stored checksum and a full-scan checksum from one read snapshot on a connection of its own. */
export async function verifyOnOwnConnection(file: string): Promise<{ lsn: number; incremental: bigint; scanned: bigint }> {
  const connection = new SqliteConnection(file, {
    create: false,
    synchronous: "NORMAL",
    queryOnly: true,
    statementCacheSize: 0,
    counters: { hits: 0, misses: 0 },
  });
  const db = connection.db;
  try {
    db.prepare("BEGIN").run();
    const position = db.prepare("SELECT head_lsn, checksum FROM _myc_replica WHERE id = 1").get() as { head_lsn: number; checksum: string };
    let scanned = 0n;
    let sinceYield = 0;
    for (const table of readUserTables(db)) {
      const statement = db.prepare(`SELECT ${table.columns.map(quoteSqliteIdentifier).join(", ")} FROM ${quoteSqliteIdentifier(table.name)}`);
      statement.safeIntegers(true);
      statement.raw(true);
      for (const raw of statement.iterate() as IterableIterator<unknown[]>) {
        scanned += rowHashOf(table.name, table.columns, raw.map(fromSqlite));
        if (++sinceYield >= 5000) {
          // (the iterator keeps its place: this connection is ours alone)
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    }
    return { lsn: Number(position.head_lsn), incremental: checksumFromHex(position.checksum), scanned: scanned % (1n << 128n) };
  } catch (error) {
    throw toDbError(error, "verify checksum");
  } finally {
    if (db.inTransaction) db.prepare("COMMIT").run();
    connection.close();
  }
}
