import { sql } from "kysely";
import { DbError } from "../db-error";
import { type NodeTables, sqliteBuilder } from "../internal/kysely";
import { decodeStatements, encodeStatements, type Statement } from "../sql-value";
import { SqliteConnection } from "./sqlite-connection";

export interface ParticipantLogEntry {
  txId: string;
  shardId: string;
  statements: Statement[];
  preparedAtMs: number;
}

interface PendingAppend {
  entry: ParticipantLogEntry;
  resolve: () => void;
  reject: (error: Error) => void;
}

const builder = sqliteBuilder<NodeTables>();

/**
 * The node's participant log (`node.db`, synchronous=FULL): the redo of every transaction prepared on a SQLite
 * shard and not yet resolved. Appends are group-committed — every prepare that arrives in the same turn of the
 * event loop shares one transaction and one fsync. Removing an entry needs no fsync: if the removal is lost in
 * a crash, recovery finds the entry again and the shard's commit marker says whether it already committed.
 */
export class ParticipantLog {
  private readonly connection: SqliteConnection;
  private pending: PendingAppend[] = [];
  private flushScheduled = false;
  batches = 0;

  constructor(
    file: string,
    private readonly maxBatch: number,
  ) {
    this.connection = new SqliteConnection(file, {
      create: true,
      synchronous: "FULL",
      queryOnly: false,
      statementCacheSize: 0,
      counters: { hits: 0, misses: 0 },
    });
    const db = this.connection.db;
    for (const query of [
      builder.schema
        .createTable("participant_log")
        .ifNotExists()
        .addColumn("tx_id", "text", (column) => column.notNull())
        .addColumn("shard_id", "text", (column) => column.notNull())
        .addColumn("statements", "text", (column) => column.notNull())
        .addColumn("prepared_at_ms", "integer", (column) => column.notNull())
        .addPrimaryKeyConstraint("participant_log_pk", ["tx_id", "shard_id"])
        .compile(),
      builder.schema
        .createTable("node_meta")
        .ifNotExists()
        .addColumn("key", "text", (column) => column.primaryKey())
        .addColumn("value", "text", (column) => column.notNull())
        .compile(),
      builder.schema
        .createTable("shard_epochs")
        .ifNotExists()
        .addColumn("shard_id", "text", (column) => column.primaryKey())
        .addColumn("epoch", "integer", (column) => column.notNull())
        .compile(),
      builder.schema
        .createTable("adopted_log")
        .ifNotExists()
        .addColumn("tx_id", "text", (column) => column.notNull())
        .addColumn("shard_id", "text", (column) => column.notNull())
        .addColumn("statements", "text", (column) => column.notNull())
        .addColumn("adopted_at_ms", "integer", (column) => column.notNull())
        .addColumn("min_applied_lsn", "integer", (column) => column.notNull())
        .addPrimaryKeyConstraint("adopted_log_pk", ["tx_id", "shard_id"])
        .compile(),
    ]) {
      db.prepare(query.sql).run();
    }
  }

  /** Durably records a prepared transaction's redo. Resolves once it is on disk. */
  append(entry: ParticipantLogEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        this.connection.run("BEGIN IMMEDIATE", "participant log");
        try {
          for (const { entry } of batch) {
            this.connection.query(
              builder
                .insertInto("participant_log")
                .values({
                  tx_id: entry.txId,
                  shard_id: entry.shardId,
                  statements: encodeStatements(entry.statements),
                  prepared_at_ms: entry.preparedAtMs,
                })
                .compile(),
              "participant log append",
            );
          }
          this.connection.run("COMMIT", "participant log commit");
        } catch (error) {
          if (this.connection.inTransaction) this.connection.run("ROLLBACK", "participant log rollback");
          throw error;
        }
        this.batches += 1;
        for (const item of batch) item.resolve();
      } catch (error) {
        const failure = error instanceof DbError ? error : new DbError("IO", `participant log: ${String(error)}`);
        for (const item of batch) item.reject(failure);
      }
    }
  }

  /** Forgets a resolved transaction (no fsync; see the class comment). */
  remove(txId: string, shardId: string): void {
    const db = this.connection.db;
    db.pragma("synchronous = OFF");
    try {
      this.connection.query(
        builder.deleteFrom("participant_log").where("tx_id", "=", txId).where("shard_id", "=", shardId).compile(),
        "participant log remove",
      );
    } finally {
      db.pragma("synchronous = FULL");
    }
  }

  list(): ParticipantLogEntry[] {
    const rows = this.connection.query(
      builder.selectFrom("participant_log").selectAll().orderBy("prepared_at_ms").orderBy("tx_id").compile(),
      "participant log list",
    );
    return rows.map((row) => ({
      txId: row.tx_id,
      shardId: row.shard_id,
      statements: decodeStatements(row.statements),
      preparedAtMs: Number(row.prepared_at_ms),
    }));
  }

  count(): number {
    const rows = this.connection.query(
      builder.selectFrom("participant_log").select(sql<number>`count(*)`.as("n")).compile(),
      "participant log count",
    );
    return Number(rows[0]?.n ?? 0);
  }

  // ---- node identity, epochs, adopted transactions (small, synchronous, synchronous=FULL writes) -----------

  /** The node id kept in node_meta, generated (by `generate`) on first use. */
  nodeId(generate: () => string): string {
    const rows = this.connection.query(builder.selectFrom("node_meta").select("value").where("key", "=", "node_id").compile(), "node id");
    if (rows[0]) return rows[0].value;
    const id = generate();
    this.connection.query(builder.insertInto("node_meta").values({ key: "node_id", value: id }).compile(), "node id");
    return id;
  }

  shardEpoch(shardId: string): number {
    const rows = this.connection.query(
      builder.selectFrom("shard_epochs").select("epoch").where("shard_id", "=", shardId).compile(),
      "shard epoch",
    );
    return Number(rows[0]?.epoch ?? 0);
  }

  setShardEpoch(shardId: string, epoch: number): void {
    this.connection.query(
      builder
        .insertInto("shard_epochs")
        .values({ shard_id: shardId, epoch })
        .onConflict((conflict) => conflict.column("shard_id").doUpdateSet({ epoch }))
        .compile(),
      "set shard epoch",
    );
  }

  adopt(entry: { txId: string; shardId: string; statements: Statement[]; adoptedAtMs: number; minAppliedLsn: number }): void {
    this.connection.query(
      builder
        .insertInto("adopted_log")
        .values({
          tx_id: entry.txId,
          shard_id: entry.shardId,
          statements: encodeStatements(entry.statements),
          adopted_at_ms: entry.adoptedAtMs,
          min_applied_lsn: entry.minAppliedLsn,
        })
        .onConflict((conflict) => conflict.columns(["tx_id", "shard_id"]).doNothing())
        .compile(),
      "adopt prepared transaction",
    );
  }

  listAdopted(shardId: string): Array<{ txId: string; shardId: string; statements: Statement[]; adoptedAtMs: number; minAppliedLsn: number }> {
    const rows = this.connection.query(
      builder.selectFrom("adopted_log").selectAll().where("shard_id", "=", shardId).orderBy("adopted_at_ms").orderBy("tx_id").compile(),
      "list adopted",
    );
    return rows.map((row) => ({
      txId: row.tx_id,
      shardId: row.shard_id,
      statements: decodeStatements(row.statements),
      adoptedAtMs: Number(row.adopted_at_ms),
      minAppliedLsn: Number(row.min_applied_lsn),
    }));
  }

  removeAdopted(shardId: string, txIds: readonly string[]): void {
    if (txIds.length === 0) return;
    this.connection.query(
      builder.deleteFrom("adopted_log").where("shard_id", "=", shardId).where("tx_id", "in", [...txIds]).compile(),
      "forget adopted",
    );
  }

  /** The shard was dropped: forget its epoch floor and adopted transactions. */
  forgetShard(shardId: string): void {
    this.connection.query(builder.deleteFrom("shard_epochs").where("shard_id", "=", shardId).compile(), "forget shard");
    this.connection.query(builder.deleteFrom("adopted_log").where("shard_id", "=", shardId).compile(), "forget shard");
  }

  /** Waits for queued appends, then closes. */
  async close(): Promise<void> {
    while (this.pending.length > 0 || this.flushScheduled) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.connection.close();
  }
}
