export { DbError, isDbError, type DbErrorCode } from "./db-error";
export {
  type SqlValue,
  type Statement,
  type StatementResult,
  normalizeInteger,
  encodeStatements,
  decodeStatements,
} from "./sql-value";
export type {
  ShardStore,
  LocalTransaction,
  LocalTransactionState,
  PreparedTransaction,
  ShardStoreStats,
  ShardStoreOptions,
  SqliteShardStoreOptions,
  PostgresShardStoreOptions,
  PostgresSslMode,
  QueryEvent,
  QueryObserver,
  QueryOperation,
  ReadOptions,
} from "./shard-store";
export { maxVisibleShards } from "./shard-store";
export type {
  ChangeEntry,
  RowChange,
  Row,
  ReplicaState,
  ChecksumVerification,
  WriteOptions,
  AdoptOptions,
  AdoptedTransaction,
  ActivationResult,
  SnapshotChunk,
  SnapshotTable,
} from "./replication/types";
export { encodeChangeEntry, decodeChangeEntry, encodeSnapshotChunk, decodeSnapshotChunk } from "./replication/codec";
export { rowHash, checksumToHex } from "./replication/checksum";
export { openShardStore } from "./open-shard-store";
export { toPostgresSql } from "./to-postgres-sql";
export { postgresSchemaName, preparedTransactionId, parsePreparedTransactionId, databaseTag } from "./identifiers";
export * as testing from "./testing";
