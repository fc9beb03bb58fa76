import type Database from "better-sqlite3";
import { sql } from "kysely";
import { DbError } from "../db-error";
import { type ShardTables, sqliteBuilder } from "../internal/kysely";
import { checksumFromHex, checksumToHex, rowHashOf } from "../replication/checksum";
import { decodeChanges, encodeChanges } from "../replication/codec";
import type { ChangeEntry } from "../replication/types";
import { normalizeInteger, type SqlValue } from "../sql-value";
import { type CapturedTable, quoteSqliteIdentifier } from "./sqlite-capture";

// The change log of a SQLite shard lives in the shard file itself (`_myc_changes`, `_myc_replica`, `_myc_vv`,
// `_myc_schema_log`), so an entry commits or vanishes with the rows it describes. The statements are compiled
// once by Kysely and run as cached better-sqlite3 statements (they are on the hot path of every write).

const builder = sqliteBuilder<ShardTables>();

export function replicationTableQueries(): Array<{ sql: string }> {
  return [
    builder.schema
      .createTable("_myc_changes")
      .ifNotExists()
      .addColumn("lsn", "integer", (column) => column.primaryKey())
      .addColumn("tx_id", "text")
      .addColumn("origin", "text", (column) => column.notNull())
      .addColumn("origin_seq", "integer", (column) => column.notNull())
      .addColumn("epoch", "integer", (column) => column.notNull())
      .addColumn("committed_at_ms", "integer", (column) => column.notNull())
      .addColumn("changes", "text", (column) => column.notNull())
      .addColumn("ddl", "text")
      .addColumn("checksum", "text", (column) => column.notNull())
      .compile(),
    builder.schema
      .createTable("_myc_replica")
      .ifNotExists()
      .addColumn("id", "integer", (column) => column.primaryKey().check(sql`id = 1`))
      .addColumn("head_lsn", "integer", (column) => column.notNull())
      .addColumn("epoch", "integer", (column) => column.notNull())
      .addColumn("checksum", "text", (column) => column.notNull())
      .addColumn("truncated_lsn", "integer", (column) => column.notNull())
      .compile(),
    builder
      .insertInto("_myc_replica")
      .values({ id: 1, head_lsn: 0, epoch: 0, checksum: checksumToHex(0n), truncated_lsn: 0 })
      .onConflict((conflict) => conflict.column("id").doNothing())
      .compile(),
    builder.schema
      .createTable("_myc_vv")
      .ifNotExists()
      .addColumn("origin", "text", (column) => column.primaryKey())
      .addColumn("seq", "integer", (column) => column.notNull())
      .compile(),
    builder.schema
      .createTable("_myc_schema_log")
      .ifNotExists()
      .addColumn("seq", "integer", (column) => column.primaryKey())
      .addColumn("ddl", "text", (column) => column.notNull())
      .compile(),
  ];
}

/** The replica position of a shard as the JS side keeps it (the committed values; a transaction works on a copy). */
export class ReplicaPosition {
  constructor(
    public headLsn: number,
    public truncatedLsn: number,
    public epoch: number,
    public checksum: bigint,
    public readonly versionVector: Map<string, number>,
    /** Origins whose counter changed since the copy was made. */
    public readonly dirtyOrigins = new Set<string>(),
  ) {}

  copy(): ReplicaPosition {
    return new ReplicaPosition(this.headLsn, this.truncatedLsn, this.epoch, this.checksum, new Map(this.versionVector));
  }

  vectorRecord(): Record<string, number> {
    return Object.fromEntries([...this.versionVector.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

const insertEntrySql = builder
  .insertInto("_myc_changes")
  .values({ lsn: 0, tx_id: null, origin: "", origin_seq: 0, epoch: 0, committed_at_ms: 0, changes: "", ddl: null, checksum: "" })
  .compile().sql;
const saveReplicaSql = builder
  .updateTable("_myc_replica")
  .set({ head_lsn: 0, epoch: 0, checksum: "", truncated_lsn: 0 })
  .where("id", "=", 1)
  .compile().sql;
const saveVectorSql = builder
  .insertInto("_myc_vv")
  .values({ origin: "", seq: 0 })
  .onConflict((conflict) => conflict.column("origin").doUpdateSet({ seq: (eb) => eb.ref("excluded.seq") }))
  .compile().sql;

/** Cached statements of one connection for the change-log tables. */
export class ChangeLogStatements {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  statement(sql: string): Database.Statement {
    let statement = this.cache.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.cache.set(sql, statement);
    }
    return statement;
  }

  clear(): void {
    this.cache.clear();
  }

  loadPosition(): ReplicaPosition {
    const row = this.db.prepare("SELECT head_lsn, epoch, checksum, truncated_lsn FROM _myc_replica WHERE id = 1").get() as
      | { head_lsn: number; epoch: number; checksum: string; truncated_lsn: number }
      | undefined;
    if (!row) throw new DbError("INTERNAL", "the shard has no _myc_replica row");
    const vector = new Map<string, number>();
    for (const entry of this.db.prepare("SELECT origin, seq FROM _myc_vv").all() as Array<{ origin: string; seq: number }>) {
      vector.set(entry.origin, Number(entry.seq));
    }
    return new ReplicaPosition(Number(row.head_lsn), Number(row.truncated_lsn), Number(row.epoch), checksumFromHex(row.checksum), vector);
  }

  insertEntry(entry: ChangeEntry, changesText: string): void {
    this.statement(insertEntrySql).run(
      entry.lsn,
      entry.txId,
      entry.origin,
      entry.originSeq,
      entry.epoch,
      entry.committedAtMs,
      changesText,
      entry.ddl ? JSON.stringify(entry.ddl) : null,
      entry.checksum,
    );
  }

  savePosition(position: ReplicaPosition): void {
    this.statement(saveReplicaSql).run(position.headLsn, position.epoch, checksumToHex(position.checksum), position.truncatedLsn, 1);
    for (const origin of position.dirtyOrigins) this.statement(saveVectorSql).run(origin, position.versionVector.get(origin) ?? 0);
    position.dirtyOrigins.clear();
  }

  readEntries(afterLsn: number, limit: number, maxBytes: number): ChangeEntry[] {
    const rows = this.statement(
      "SELECT lsn, tx_id, origin, origin_seq, epoch, committed_at_ms, changes, ddl, checksum FROM _myc_changes WHERE lsn > ? ORDER BY lsn LIMIT ?",
    ).all(afterLsn, limit) as EntryRow[];
    const entries: ChangeEntry[] = [];
    let bytes = 0;
    for (const row of rows) {
      bytes += row.changes.length + (row.ddl?.length ?? 0);
      if (entries.length > 0 && bytes > maxBytes) break;
      entries.push(entryFromRow(row));
    }
    return entries;
  }

  /** Identity (origin, originSeq) of the stored entries in [from, to], for divergence checks. */
  identities(from: number, to: number): Map<number, { origin: string; originSeq: number }> {
    const rows = this.statement("SELECT lsn, origin, origin_seq FROM _myc_changes WHERE lsn BETWEEN ? AND ?").all(from, to) as Array<{
      lsn: number;
      origin: string;
      origin_seq: number;
    }>;
    return new Map(rows.map((row) => [Number(row.lsn), { origin: row.origin, originSeq: Number(row.origin_seq) }]));
  }

  checksumAt(lsn: number): string | null {
    const row = this.statement("SELECT checksum FROM _myc_changes WHERE lsn = ?").get(lsn) as { checksum: string } | undefined;
    return row?.checksum ?? null;
  }

  hasEntryFor(txId: string): boolean {
    return this.statement("SELECT 1 FROM _myc_changes WHERE tx_id = ? LIMIT 1").get(txId) !== undefined;
  }

  schemaLog(): string[] {
    return (this.statement("SELECT ddl FROM _myc_schema_log ORDER BY seq").all() as Array<{ ddl: string }>).map((row) => row.ddl);
  }

  appendSchemaLog(ddl: readonly string[]): void {
    const next = Number((this.statement("SELECT coalesce(max(seq), 0) AS seq FROM _myc_schema_log").get() as { seq: number }).seq) + 1;
    ddl.forEach((statement, index) => this.statement("INSERT INTO _myc_schema_log (seq, ddl) VALUES (?, ?)").run(next + index, statement));
  }
}

export interface EntryRow {
  lsn: number;
  tx_id: string | null;
  origin: string;
  origin_seq: number;
  epoch: number;
  committed_at_ms: number;
  changes: string;
  ddl: string | null;
  checksum: string;
}

export function entryFromRow(row: EntryRow): ChangeEntry {
  const entry: ChangeEntry = {
    lsn: Number(row.lsn),
    txId: row.tx_id,
    origin: row.origin,
    originSeq: Number(row.origin_seq),
    epoch: Number(row.epoch),
    changes: decodeChanges(row.changes),
    committedAtMs: Number(row.committed_at_ms),
    checksum: row.checksum,
  };
  if (row.ddl !== null) entry.ddl = JSON.parse(row.ddl) as string[];
  return entry;
}

export { encodeChanges };

/** Sum of the row hashes of every user table, read on `db` (inside whatever transaction it is in). */
export function scanChecksum(db: Database.Database, tables: readonly CapturedTable[]): bigint {
  let sum = 0n;
  for (const table of tables) {
    const statement = db.prepare(`SELECT ${table.columns.map(quoteSqliteIdentifier).join(", ")} FROM ${quoteSqliteIdentifier(table.name)}`);
    statement.safeIntegers(true);
    statement.raw(true);
    for (const values of statement.iterate() as IterableIterator<unknown[]>) {
      sum += rowHashOf(table.name, table.columns, values.map(fromSqlite));
    }
  }
  return sum % (1n << 128n);
}

export function fromSqlite(value: unknown): SqlValue {
  if (typeof value === "bigint") return normalizeInteger(value);
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  return value as SqlValue;
}
