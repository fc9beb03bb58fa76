import { DbError, type DbErrorCode } from "./db-error";
import { assertShardId } from "./identifiers";
import type {
  ActivationResult,
  AdoptedTransaction,
  AdoptOptions,
  ChangeEntry,
  ChecksumVerification,
  ReplicaState,
  SnapshotChunk,
  WriteOptions,
} from "./replication/types";
import type { Statement, StatementResult, SqlValue } from "./sql-value";

/**
 * The node-agent's storage: every shard the node holds, in its own database (SQLite: a file per shard;
 * PostgreSQL: a schema per shard), with local transactions and the participant side of two-phase commit.
 * Both backends pass the same behaviour suite (test/support/shard-store-behaviour.ts).
 */
export interface ShardStore {
  readonly kind: "sqlite" | "postgres";
  /** The origin stamped on the change-log entries of transactions that run here. */
  readonly nodeId: string;

  /** Creates the shard's database (file or schema) and its internal tables if missing. Idempotent. */
  ensureShard(shardId: string): Promise<void>;
  /** Deletes the shard and all its data. Waits for its open transaction; refuses while one is prepared. */
  dropShard(shardId: string): Promise<void>;
  listShards(): Promise<string[]>;

  /**
   * Runs user DDL, one statement per element, in one local transaction (both backends have transactional
   * DDL): all of it applies or none. Re-applying DDL that already took effect fails with ALREADY_EXISTS.
   * Every user table must have a PRIMARY KEY (INVALID_ARGUMENT otherwise): change capture is (re)installed on
   * every table, and the statements become one change-log entry (`ddl`) so replicas change schema at the same
   * point of the log. Do not call it on a secondary: schema reaches secondaries through applyChanges.
   */
  applySchema(shardId: string, ddl: readonly string[], options?: WriteOptions): Promise<void>;

  /**
   * One read-only statement against the latest committed state. Never waits for writers. With
   * `visibleShards`, the tables of those shards (held by this store) are visible to the statement beside
   * the shard's own, by their plain names: a co-located join, or a join with a reference table.
   */
  read(shardId: string, sql: string, params?: readonly SqlValue[], options?: ReadOptions): Promise<StatementResult>;

  /**
   * Opens a local write transaction. SQLite: takes the shard's write lock (one writer per shard), waiting at
   * most `lockWaitTimeoutMs` (LOCK_TIMEOUT). PostgreSQL: row locks are the database's, bounded by lock_timeout.
   */
  begin(shardId: string, txId: string, options?: WriteOptions): Promise<LocalTransaction>;

  /**
   * Runs the statements as one local transaction and returns one result per statement; a failing statement
   * fails this call only (its earlier statements are undone). SQLite group-commits concurrent calls on one
   * shard into a single transaction (a SAVEPOINT each) so one fsync covers the batch.
   */
  executeAutocommit(shardId: string, statements: readonly Statement[], options?: WriteOptions): Promise<StatementResult[]>;

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

  // ---- replication: change log, apply, checksums, snapshots, fencing (see DESIGN.md "Replication") ----------

  /**
   * Raises the shard's epoch (never lowers it: STALE_EPOCH when `epoch` is below the stored one; equal is a
   * no-op). Durable when it resolves; from then on writes with a lower `WriteOptions.epoch` fail with
   * STALE_EPOCH, and new entries are stamped with it. Does not wait for open or prepared transactions.
   */
  setShardEpoch(shardId: string, epoch: number): Promise<void>;
  /** The last lsn in the shard's change log (0 when empty). */
  headLsn(shardId: string): Promise<number>;
  /**
   * Entries with lsn > afterLsn, in order: at most `limit` (@default 1000, at most 10000) and about 4 MiB (at
   * least one entry). REPLICATION_GAP when entries after `afterLsn` were truncated (resync from a snapshot).
   */
  readChanges(shardId: string, afterLsn: number, limit?: number): Promise<ChangeEntry[]>;
  /**
   * Resolves true as soon as an entry with lsn > afterLsn is committed (an in-process notification from the
   * commit path, not polling), false after `timeoutMs` or when `signal` aborts.
   */
  waitForChanges(shardId: string, afterLsn: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Forgets log entries up to and including `throughLsn` (not beyond the head). Returns how many. */
  truncateChanges(shardId: string, throughLsn: number): Promise<number>;
  /**
   * Applies a primary's entries, in one local transaction holding the shard's write lock: entries at or below
   * the applied lsn are skipped (REPLICA_DIVERGED if this log holds another entry there), the first new one
   * must be applied + 1 (REPLICATION_GAP otherwise). Rows are upserted/deleted by key without capture, the
   * entries are stored verbatim in this shard's log, its version vector, epoch and checksum advance in the
   * same transaction, and 2PC commit markers are written for entries with a txId. REPLICA_DIVERGED when the
   * checksum reached differs from the entry's.
   */
  applyChanges(shardId: string, entries: readonly ChangeEntry[]): Promise<{ appliedLsn: number }>;
  replicaState(shardId: string): Promise<ReplicaState>;
  /** The checksum after entry `lsn` (0: the empty shard), or null when the log no longer holds it. */
  checksumAt(shardId: string, lsn: number): Promise<string | null>;
  /** Recomputes the checksum from a full scan, in one read snapshot with the stored one, and compares. */
  verifyChecksum(shardId: string): Promise<ChecksumVerification>;
  /**
   * A consistent copy of the shard (one read snapshot): schema, rows in bounded chunks, commit markers, and
   * the log position, version vector and checksum they correspond to. Writes continue meanwhile.
   */
  snapshot(shardId: string): AsyncIterable<SnapshotChunk>;
  /**
   * Replaces the shard's contents with a snapshot in one local transaction (creating the shard if needed):
   * all of it or nothing. The log restarts at the snapshot's lsn (truncatedLsn = lsn). REPLICA_DIVERGED when
   * the rows do not add up to the snapshot's checksum; BUSY while a transaction is prepared on the shard.
   */
  restoreSnapshot(shardId: string, chunks: AsyncIterable<SnapshotChunk> | Iterable<SnapshotChunk>): Promise<{ lsn: number }>;
  /**
   * Records a prepared transaction of the shard's primary (its redo statements) on this replica without
   * running it, so that this node can finish it if promoted. Idempotent. Forgotten automatically when its
   * entry arrives through applyChanges.
   */
  adoptPrepared(shardId: string, txId: string, statements: readonly Statement[], options?: AdoptOptions): Promise<void>;
  /** Forgets an adopted transaction (the primary aborted it). Idempotent. */
  discardAdopted(shardId: string, txId: string): Promise<void>;
  listAdopted(shardId: string): Promise<AdoptedTransaction[]>;
  /**
   * After promotion: re-executes every adopted transaction whose effects are not already here (no commit
   * marker, no log entry with its txId) into a held prepared transaction, exactly like crash recovery; from
   * then on it is an ordinary prepared transaction (commitPrepared / abortPrepared / recoverPrepared).
   */
  activatePrepared(shardId: string): Promise<ActivationResult>;

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
  /** The epoch precondition given to begin (checked again at commit and prepare), if any. */
  readonly epoch: number | undefined;
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

export interface ReadOptions {
  /** Other shards whose tables the statement reads (at most `maxVisibleShards`). */
  visibleShards?: readonly string[];
}

/** SQLite attaches each visible shard's file; it allows 10 attached databases per connection. */
export const maxVisibleShards = 8;

/** The distinct shards `options` makes visible beside `shardId`, checked against the bound. */
export function visibleShardIds(shardId: string, options: ReadOptions | undefined): string[] {
  const ids = [...new Set(options?.visibleShards ?? [])].filter((id) => id !== shardId);
  for (const id of ids) assertShardId(id);
  if (ids.length > maxVisibleShards) {
    throw new DbError("INVALID_ARGUMENT", `a statement may read at most ${maxVisibleShards} other shards beside its own, this one asks for ${ids.length}`);
  }
  return ids;
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
  /**
   * Change-log entries written here (local transactions) and applied from other nodes; PostgreSQL: how many
   * were staged (the log's lock was busy) and published after their commit; waitForChanges callers waiting.
   */
  changeLog: { entriesWritten: number; entriesApplied: number; entriesStaged: number; waiters: number };
}

export type QueryOperation = "read" | "execute" | "autocommit" | "prepare" | "commit" | "rollback" | "ddl" | "apply" | "snapshot" | "restore";

export interface QueryEvent {
  operation: QueryOperation;
  shardId: string;
  durationMs: number;
  /** null when it succeeded. */
  errorCode: DbErrorCode | null;
}

/** Receives one event per operation (for latency histograms). Must not throw; a throw is swallowed. */
export type QueryObserver = (event: QueryEvent) => void;

/** Options both backends share. */
interface CommonShardStoreOptions {
  /**
   * This node's id: the origin of the change-log entries of transactions that run here.
   * @default an id generated on first open and kept in the node database
   */
  nodeId?: string;
  /**
   * Install change capture on user tables. Off only for benchmarks and nodes that never replicate: a table
   * without capture produces no change-log entries. @default true
   */
  changeCapture?: boolean;
  /** waitForChanges calls that may wait at once before BUSY. @default 10000 */
  maxChangeWaiters?: number;
}

export interface SqliteShardStoreOptions extends CommonShardStoreOptions {
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

export interface PostgresShardStoreOptions extends CommonShardStoreOptions {
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
