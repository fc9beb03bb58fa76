import type { SqlValue } from "../sql-value";

/** One row of a user table as column name → value. */
export type Row = Record<string, SqlValue>;

/**
 * The net change of one row (identified by table and primary key) in one committed local transaction. Several
 * writes of the same row inside the transaction are collapsed: `before` is the row as it was before the
 * transaction, `row` as it is after it.
 */
export interface RowChange {
  table: string;
  op: "upsert" | "delete";
  /** The primary-key columns and their values. */
  key: Row;
  /** The full new row (every column) of an upsert; absent for a delete. */
  row?: Row;
  /** The full row before the transaction; null when the row did not exist (an insert). */
  before: Row | null;
}

/**
 * One committed local transaction in a shard's change log. The log is gapless (lsn 1, 2, 3, …) and the same on
 * every replica of the shard: a secondary stores the entries it applies verbatim, so a promoted secondary
 * continues the same log.
 */
export interface ChangeEntry {
  /** Position in the shard's log: 1, 2, 3, … without gaps. */
  lsn: number;
  /** The local/2PC transaction id; null for autocommits. */
  txId: string | null;
  /** The node id of the node where the transaction ran (its primary at the time). */
  origin: string;
  /** Per shard and origin: 1, 2, 3, … — the version vector counts these. */
  originSeq: number;
  /** The shard epoch on the origin when the entry was written. */
  epoch: number;
  /** Row changes, in the order they should be applied (by last write inside the transaction). */
  changes: RowChange[];
  /**
   * Schema statements (applySchema), when this entry is a schema change; `changes` is then empty. Applying the
   * entry runs them, so replicas change their schema at the same point of the log as the origin.
   */
  ddl?: string[];
  committedAtMs: number;
  /** The shard's checksum after this entry on the origin (32 hex digits); a replica must reach the same. */
  checksum: string;
}

export interface ReplicaState {
  /** The last lsn in this shard's log (applied or written here). */
  appliedLsn: number;
  /** Entries at or below this lsn were truncated (or came with a snapshot) and cannot be read any more. */
  truncatedLsn: number;
  /** The shard's epoch: the highest of setShardEpoch and the epochs of applied entries. */
  epoch: number;
  /** origin node id → highest originSeq in this shard's log. */
  versionVector: Record<string, number>;
  /** The checksum at appliedLsn. */
  checksum: string;
}

export interface ChecksumVerification {
  lsn: number;
  /** The checksum maintained entry by entry. */
  incremental: string;
  /** The checksum computed from a full scan of the rows, in the same read snapshot. */
  scanned: string;
  ok: boolean;
}

/** Preconditions of a write. */
export interface WriteOptions {
  /**
   * The shard epoch the caller believes current. A write whose epoch is lower than the shard's stored epoch fails
   * with STALE_EPOCH (checked at begin and again when the transaction commits or prepares).
   */
  epoch?: number;
}

export interface AdoptOptions {
  /**
   * The origin's last lsn when the transaction prepared. Activation refuses (REPLICATION_GAP) while this replica
   * has applied less: the redo must re-run against the state it first ran on.
   */
  minAppliedLsn?: number;
}

export interface AdoptedTransaction {
  shardId: string;
  txId: string;
  statements: import("../sql-value").Statement[];
  adoptedAtMs: number;
  minAppliedLsn: number;
}

export interface ActivationResult {
  /** Re-executed and now held as ordinary prepared transactions. */
  activated: string[];
  /** Already in this replica (its change-log entry / commit marker arrived), forgotten. */
  skipped: string[];
  /** SQLite holds one prepared transaction per shard: these wait until it is resolved; call again then. */
  waiting: string[];
}

export interface SnapshotTable {
  name: string;
  columns: string[];
  keyColumns: string[];
}

/**
 * A snapshot is a stream of chunks: one `begin`, any number of `rows` and `markers`, one `end`. Every chunk is
 * bounded (at most `maxRowsPerChunk` rows and about `maxChunkBytes` of values; a single larger row travels alone).
 */
export type SnapshotChunk =
  | {
      kind: "begin";
      formatVersion: 1;
      shardId: string;
      /** The log position the rows correspond to. */
      lsn: number;
      epoch: number;
      versionVector: Record<string, number>;
      checksum: string;
      /** Every schema statement applied to the shard, in order: replaying them recreates the tables. */
      ddl: string[];
      tables: SnapshotTable[];
    }
  | { kind: "rows"; table: string; columns: string[]; rows: SqlValue[][] }
  | { kind: "markers"; markers: Array<{ txId: string; preparedAtMs: number }> }
  | { kind: "end"; rowCount: number; markerCount: number };
