import type { DbErrorCode } from "./db-error";
import type { Statement, StatementResult, SqlValue } from "./sql-value";

/**
 * The node-agent's storage: every shard the node holds, in its own database (SQLite: a file per shard;
 * PostgreSQL: a schema per shard), with local transactions and the participant side of two-phase commit.
 * Both backends pass the same behaviour suite (test/support/shard-store-behaviour.ts).
 */
export interface ShardStore {
  readonly kind: "sqlite" | "postgres";

  /** Creates the shard's database (file or schema) and its internal tables if missing. Idempotent. */
  ensureShard(shardId: string): Promise<void>;
  /** Deletes the shard and all its data. Waits for its open transaction; refuses while one is prepared. */
  dropShard(shardId: string): Promise<void>;
  listShards(): Promise<string[]>;

  /**
   * Runs user DDL, one statement per element, in one local transaction (both backends have transactional
   * DDL): all of it applies or none. Re-applying DDL that already took effect fails with ALREADY_EXISTS.
   */
  applySchema(shardId: string, ddl: readonly string[]): Promise<void>;

  /** One read-only statement against the latest committed state. Never waits for writers. */
  read(shardId: string, sql: string, params?: readonly SqlValue[]): Promise<StatementResult>;

  /**
   * Opens a local write transaction. SQLite: takes the shard's write lock (one writer per shard), waiting at
   * most `lockWaitTimeoutMs` (LOCK_TIMEOUT). PostgreSQL: row locks are the database's, bounded by lock_timeout.
   */
  begin(shardId: string, txId: string): Promise<LocalTransaction>;

  /**
   * Runs the statements as one local transaction and returns one result per statement; a failing statement
   * fails this call only (its earlier statements are undone). SQLite group-commits concurrent calls on one
   * shard into a single transaction (a SAVEPOINT each) so one fsync covers the batch.
   */
  executeAutocommit(shardId: string, statements: readonly Statement[]): Promise<StatementResult[]>;

  /**
   * Commits a prepared transaction. Idempotent: committing one that already committed succeeds. Fails with
   * NOT_PREPARED when the transaction was rolled back or never prepared on this shard.
   */
  commitPrepared(shardId: string, txId: string): Promise<void>;
  /**
   * Rolls back a prepared (or still open) transaction. Idempotent: aborting an unknown or already aborted
   * transaction succeeds (presumed abort). Fails with ALREADY_COMMITTED when it committed.
   */
  abortPrepared(shardId: string, txId: string): Promise<void>;
  /**
   * Every transaction prepared on this node and not yet resolved. SQLite redoes prepared transactions from the
   * participant log while the store opens, before anything is served, and holds each in an open transaction
   * (its writes invisible to readers) until commitPrepared/abortPrepared. PostgreSQL lists pg_prepared_xacts.
   */
  recoverPrepared(): Promise<PreparedTransaction[]>;
  /**
   * Forgets the commit markers of 2PC transactions prepared before `preparedBeforeMs`. A marker is what lets a
   * repeated commitPrepared succeed after the first one; prune only transactions the coordinator is done with.
   */
  pruneTransactionMarkers(shardId: string, preparedBeforeMs: number): Promise<number>;

  /**
   * Fails with CONFIG when the backend cannot serve as configured. PostgreSQL: max_prepared_transactions must
   * be at least `minPreparedTransactions` (@default 1).
   */
  checkReady(options?: { minPreparedTransactions?: number }): Promise<void>;
  /** Bytes on disk for the shard (SQLite: file and WAL; PostgreSQL: tables with indexes and TOAST). */
  sizeBytes(shardId: string): Promise<number>;
  stats(): ShardStoreStats;
  /**
   * Closes every connection. Open transactions roll back; prepared ones stay durable (SQLite: in the
   * participant log; PostgreSQL: as prepared transactions) and come back on the next open.
   */
  close(): Promise<void>;
}

export type LocalTransactionState = "open" | "failed" | "prepared" | "committed" | "rolled_back";

export interface LocalTransaction {
  readonly shardId: string;
  readonly txId: string;
  readonly state: LocalTransactionState;
  /**
   * The redo log so far: every statement that wrote, with its parameters, in order. (Change capture will
   * append the per-transaction change record alongside it.)
   */
  readonly statements: ReadonlyArray<Statement>;
  /**
   * Runs one statement in the transaction. A failing statement fails the whole local transaction (state
   * `failed`, later calls ABORTED), as PostgreSQL does; the only way on is rollback().
   */
  execute(sql: string, params?: readonly SqlValue[]): Promise<StatementResult>;
  /** Makes the transaction durable without committing it; after this only commit/rollback. */
  prepare(): Promise<void>;
  /** One-phase commit when open; the same as store.commitPrepared when prepared. */
  commit(): Promise<void>;
  /** Rolls back (also a prepared transaction). Idempotent. */
  rollback(): Promise<void>;
}

export interface PreparedTransaction {
  shardId: string;
  txId: string;
  /**
   * The redo statements. SQLite: from the participant log. PostgreSQL: null — PREPARE TRANSACTION makes the
   * changes themselves durable and no separate redo is written (it would cost a second fsync per prepare).
   */
  statements: Statement[] | null;
  preparedAtMs: number;
}

export interface ShardStoreStats {
  statementCache: { hits: number; misses: number; size: number };
  /** PostgreSQL only: connections in the pool, idle ones, and callers waiting for one. */
  pool?: { total: number; idle: number; waiting: number };
  queryCount: number;
  queryErrorCount: number;
  openShards: number;
  openTransactions: number;
  preparedTransactions: number;
  /** Writers waiting for a shard's write lock (SQLite). */
  lockWaiting: number;
  /** SQLite: group commits and the autocommit requests they carried. */
  groupCommits: { batches: number; requests: number };
}

export type QueryOperation = "read" | "execute" | "autocommit" | "prepare" | "commit" | "rollback" | "ddl";

export interface QueryEvent {
  operation: QueryOperation;
  shardId: string;
  durationMs: number;
  /** null when it succeeded. */
  errorCode: DbErrorCode | null;
}

/** Receives one event per operation (for latency histograms). Must not throw; a throw is swallowed. */
export type QueryObserver = (event: QueryEvent) => void;

export interface SqliteShardStoreOptions {
  kind: "sqlite";
  /** Directory of the node's data: shards live in `<dataDir>/shards/<shardId>.db`. */
  dataDir: string;
  /** The node's own database (participant log). @default `<dataDir>/node.db` */
  nodeDatabasePath?: string;
  /** PRAGMA synchronous of shard files; the participant log is always FULL. @default "FULL" */
  synchronous?: "FULL" | "NORMAL";
  /** Prepared statements kept per connection (DATABASE_STATEMENT_CACHE). @default 1000 */
  statementCacheSize?: number;
  /** Longest wait for a shard's write lock before LOCK_TIMEOUT. @default 5000 */
  lockWaitTimeoutMs?: number;
  /** Writers that may queue for one shard's write lock before BUSY. @default 1000 */
  maxLockWaiters?: number;
  /** Most autocommit requests carried by one group commit. @default 256 */
  maxGroupCommitBatch?: number;
  onQuery?: QueryObserver;
}

export type PostgresSslMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface PostgresShardStoreOptions {
  kind: "postgres";
  /** The node's database (DATABASE_URL). */
  url: string;
  /** DATABASE_MAX_CONNECTIONS. @default 10 */
  maxConnections?: number;
  /** DATABASE_IDLE_TIMEOUT. @default 300000 */
  idleTimeoutMs?: number;
  /** DATABASE_CONNECT_TIMEOUT; also the longest wait for a free pooled connection. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * DATABASE_SSL_MODE, libpq's meanings: `prefer` tries TLS and falls back to plain when the server has none;
   * `require` encrypts without checking the certificate; `verify-ca` checks it against `sslRootCert`;
   * `verify-full` also checks the host name. @default "prefer"
   */
  sslMode?: PostgresSslMode;
  /** PEM of the CA for verify-ca / verify-full. @default the system roots */
  sslRootCert?: string;
  /** Named prepared statements kept per connection (DATABASE_STATEMENT_CACHE). @default 1000 */
  statementCacheSize?: number;
  /** lock_timeout of write transactions: LOCK_TIMEOUT after this wait for a row lock. @default 5000 */
  lockWaitTimeoutMs?: number;
  onQuery?: QueryObserver;
}

export type ShardStoreOptions = SqliteShardStoreOptions | PostgresShardStoreOptions;
