/**
 * Every failure of @mycelium/db is a DbError with one code from this closed set. Callers branch on `code`
 * (never on message text); `retryable` says whether running the same request again may succeed.
 *
 * | code             | meaning                                                                | retryable |
 * |------------------|------------------------------------------------------------------------|-----------|
 * | CONSTRAINT       | a row broke a constraint (unique, not null, check, foreign key, type)   | no        |
 * | SYNTAX           | the statement cannot be prepared (syntax, unknown column/function,     | no        |
 * |                  | wrong number of parameters, several statements in one string)          |           |
 * | NO_SUCH_TABLE    | the statement names a table the shard does not have                    | no        |
 * | ALREADY_EXISTS   | DDL creates something that exists (re-applied schema)                  | no        |
 * | INVALID_ARGUMENT | the caller passed a bad id, parameter value or option                  | no        |
 * | LOCK_TIMEOUT     | the shard's write lock (or a row lock) was not granted in time         | yes       |
 * | BUSY             | the backend is contended (lock queue full, deadlock, serialization,    | yes       |
 * |                  | pool exhausted); retry the whole transaction                           |           |
 * | ABORTED          | an earlier statement of this local transaction failed; roll it back    | no        |
 * | SHARD_NOT_FOUND  | the node holds no such shard                                           | no        |
 * | NOT_PREPARED     | commit of a prepared transaction that does not exist (rolled back or   | no        |
 * |                  | never prepared)                                                        |           |
 * | ALREADY_COMMITTED| abort of a prepared transaction that was already committed             | no        |
 * | CONFIG           | the backend cannot work as configured (e.g. max_prepared_transactions) | no        |
 * | UNAVAILABLE      | the backend cannot be reached (connection refused, server shutting     | yes       |
 * |                  | down)                                                                  |           |
 * | IO               | the disk failed or is full, the file is corrupt or read-only           | no        |
 * | CLOSED           | the store was closed                                                   | no        |
 * | STALE_EPOCH      | a write (or setShardEpoch) under an epoch lower than the shard's: this | no        |
 * |                  | node is no longer the shard's primary for that epoch                   |           |
 * | REPLICATION_GAP  | the change log cannot continue from there: applyChanges got entries    | no        |
 * |                  | that do not follow the applied lsn, readChanges asked for truncated    |           |
 * |                  | entries, activation needs entries this replica has not applied          |           |
 * | REPLICA_DIVERGED | this replica's log or checksum disagrees with the entries it is given  | no        |
 * |                  | (another entry at the same lsn, another checksum): resync it            |           |
 * | INTERNAL         | a broken invariant: a bug                                              | no        |
 */
export type DbErrorCode =
  | "CONSTRAINT"
  | "SYNTAX"
  | "NO_SUCH_TABLE"
  | "ALREADY_EXISTS"
  | "INVALID_ARGUMENT"
  | "LOCK_TIMEOUT"
  | "BUSY"
  | "ABORTED"
  | "SHARD_NOT_FOUND"
  | "NOT_PREPARED"
  | "ALREADY_COMMITTED"
  | "CONFIG"
  | "UNAVAILABLE"
  | "IO"
  | "CLOSED"
  | "STALE_EPOCH"
  | "REPLICATION_GAP"
  | "REPLICA_DIVERGED"
  | "INTERNAL";

const retryableCodes: ReadonlySet<DbErrorCode> = new Set<DbErrorCode>(["LOCK_TIMEOUT", "BUSY", "UNAVAILABLE"]);

export class DbError extends Error {
  override readonly name = "DbError";
  readonly code: DbErrorCode;
  readonly retryable: boolean;
  /** The backend's own error code (`SQLITE_CONSTRAINT_UNIQUE`, PostgreSQL SQLSTATE `23505`), when there is one. */
  readonly backendCode: string | undefined;

  constructor(code: DbErrorCode, message: string, options: { cause?: unknown; backendCode?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = retryableCodes.has(code);
    this.backendCode = options.backendCode;
  }

  static isRetryableCode(code: DbErrorCode): boolean {
    return retryableCodes.has(code);
  }
}

export function isDbError(error: unknown, code?: DbErrorCode): error is DbError {
  return error instanceof DbError && (code === undefined || error.code === code);
}
