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
} from "./shard-store";
export { openShardStore } from "./open-shard-store";
export { toPostgresSql } from "./to-postgres-sql";
export { postgresSchemaName, preparedTransactionId, parsePreparedTransactionId } from "./identifiers";
export * as testing from "./testing";
