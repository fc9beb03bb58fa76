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
  /** Shard metadata (schema version, later epoch and applied LSN). */
  _myc_meta: { key: string; value: string };
}

/** The SQLite node database (`node.db`). */
export interface NodeTables {
  participant_log: { tx_id: string; shard_id: string; statements: string; prepared_at_ms: number };
  node_meta: { key: string; value: string };
}

/** PostgreSQL node-level schema `mycelium_node`. */
export interface PostgresNodeTables {
  shards: { shard_id: string; schema_name: string; created_at_ms: string | number };
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
