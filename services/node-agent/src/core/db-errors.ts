import { isDbError, type DbErrorCode } from "@mycelium/db";
import { MyceliumError, type ErrorCode } from "@mycelium/rpc";

const mapping: Record<DbErrorCode, ErrorCode> = {
  CONSTRAINT: "FAILED_PRECONDITION",
  SYNTAX: "INVALID_ARGUMENT",
  NO_SUCH_TABLE: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  LOCK_TIMEOUT: "ABORTED",
  BUSY: "ABORTED",
  ABORTED: "ABORTED",
  SHARD_NOT_FOUND: "FAILED_PRECONDITION",
  NOT_PREPARED: "FAILED_PRECONDITION",
  ALREADY_COMMITTED: "FAILED_PRECONDITION",
  CONFIG: "FAILED_PRECONDITION",
  UNAVAILABLE: "UNAVAILABLE",
  IO: "UNAVAILABLE",
  CLOSED: "UNAVAILABLE",
  INTERNAL: "INTERNAL",
  // A write under an epoch this copy has moved past: the caller routed with an old shard map.
  STALE_EPOCH: "FAILED_PRECONDITION",
  REPLICATION_GAP: "FAILED_PRECONDITION",
  REPLICA_DIVERGED: "FAILED_PRECONDITION",
};

/** A storage error as the wire error a caller can act on; the database's own message is kept. */
export function toMyceliumError(error: unknown, context: { shardId: string }): unknown {
  if (!isDbError(error)) return error;
  const message = error.message.includes(context.shardId) ? error.message : `shard ${context.shardId}: ${error.message}`;
  return new MyceliumError(mapping[error.code], message, {
    reason: error.code,
    details: { shardId: context.shardId, ...(error.backendCode ? { backendCode: error.backendCode } : {}) },
    cause: error,
  });
}
