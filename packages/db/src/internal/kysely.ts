import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";

// Kysely builds the SQL of every internal table; the store runs the compiled queries on its own connections,
// inside its own transactions (a shard's write transaction, the participant log's group commit), which is
// why the builders are compile-only (DummyDriver) rather than owning connections.

/** Tables inside every shard's database. `_myc_` names are reserved: user SQL may not mention them. */
export interface ShardTables {
  /** One row per 2PC transaction prepared on this shard; committed (visible) exactly when the transaction is. */
  _myc_txn: { tx_id: string; prepared_at_ms: number };
  /** Shard metadata. */
  _myc_meta: { key: string; value: string };
  /** The change log: one row per committed local transaction that changed captured rows (or the schema). */
  _myc_changes: {
    lsn: number;
    tx_id: string | null;
    origin: string;
    origin_seq: number;
    epoch: number;
    committed_at_ms: number;
    /** RowChange[] in the typed JSON of replication/codec.ts. */
    changes: string;
    /** JSON string[] of schema statements, or null. */
    ddl: string | null;
    /** Checksum after this entry: SQLite 32 hex digits; PostgreSQL numeric (decimal). */
    checksum: string;
  };
  /** The replica's position, one row (id = 1). */
  _myc_replica: { id: number; head_lsn: number; epoch: number; checksum: string; truncated_lsn: number };
  /** The version vector: highest originSeq per origin. */
  _myc_vv: { origin: string; seq: number };
  /** Every schema statement applied to the shard, in order (what a snapshot replays). */
  _myc_schema_log: { seq: number; ddl: string };
}

/** The SQLite node database (`node.db`). */
export interface NodeTables {
  participant_log: { tx_id: string; shard_id: string; statements: string; prepared_at_ms: number };
  node_meta: { key: string; value: string };
  /** The epoch floor set by setShardEpoch (kept outside the shard file so it never waits for the shard's lock). */
  shard_epochs: { shard_id: string; epoch: number };
  /** Prepared transactions of other nodes' primaries, adopted for a possible promotion. */
  adopted_log: { tx_id: string; shard_id: string; statements: string; adopted_at_ms: number; min_applied_lsn: number };
}

/** PostgreSQL node-level schema `mycelium_node`. */
export interface PostgresNodeTables {
  shards: { shard_id: string; schema_name: string; created_at_ms: string | number };
  node_meta: { key: string; value: string };
  adopted: { shard_id: string; tx_id: string; statements: string; adopted_at_ms: string | number; min_applied_lsn: string | number };
}

export function sqliteBuilder<DB>(): Kysely<DB> {
  return new Kysely<DB>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
}

export function postgresBuilder<DB>(): Kysely<DB> {
  return new Kysely<DB>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
}
