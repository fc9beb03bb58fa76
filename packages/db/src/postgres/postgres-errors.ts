import { DbError, type DbErrorCode } from "../db-error";

const networkErrorCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "EPIPE", "EAI_AGAIN"]);

/** SQLSTATE (or Node network error code) → DbError code. */
function classify(sqlState: string | undefined, message: string): DbErrorCode {
  if (sqlState === undefined) {
    if (/does not support SSL/i.test(message)) return "CONFIG";
    if (/timeout exceeded when trying to connect|Connection terminated|connection.*(closed|ended)/i.test(message)) return "UNAVAILABLE";
    return "INTERNAL";
  }
  if (networkErrorCodes.has(sqlState)) return "UNAVAILABLE";
  switch (sqlState) {
    case "MYC01": // raised by _myc_publish: a write under an epoch below the shard's
      return "STALE_EPOCH";
    case "42P01": // undefined_table
      return "NO_SUCH_TABLE";
    case "42P07": // duplicate_table
    case "42701": // duplicate_column
    case "42P06": // duplicate_schema
    case "42710": // duplicate_object
    case "42723": // duplicate_function
    case "42P16": // invalid_table_definition (e.g. multiple primary keys when re-adding)
      return "ALREADY_EXISTS";
    case "55P03": // lock_not_available (lock_timeout)
      return "LOCK_TIMEOUT";
    case "40001": // serialization_failure
    case "40P01": // deadlock_detected
    case "53300": // too_many_connections
    case "53400": // configuration_limit_exceeded (max_prepared_transactions reached)
    case "55006": // object_in_use
    case "55000": // object_not_in_prerequisite_state (prepared transaction busy)
      return "BUSY";
    case "25P02": // in_failed_sql_transaction
      return "ABORTED";
    case "25006": // read_only_sql_transaction
      return "INVALID_ARGUMENT";
    case "57P01": // admin_shutdown
    case "57P02": // crash_shutdown
    case "57P03": // cannot_connect_now
      return "UNAVAILABLE";
    case "53100": // disk_full
    case "58030": // io_error
    case "XX001": // data_corrupted
    case "XX002": // index_corrupted
      return "IO";
    default:
      break;
  }
  const errorClass = sqlState.slice(0, 2);
  if (errorClass === "23" || errorClass === "22") return "CONSTRAINT"; // integrity / data exceptions
  if (errorClass === "42") return "SYNTAX"; // syntax error or access rule violation
  if (errorClass === "08") return "UNAVAILABLE"; // connection exception
  if (errorClass === "28") return "CONFIG"; // invalid authorization
  if (errorClass === "3D" || errorClass === "3F") return "CONFIG"; // invalid catalog / schema name
  return "INTERNAL";
}

export function toDbError(error: unknown, context: string): DbError {
  if (error instanceof DbError) return error;
  const err = error as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(error);
  const sqlState = typeof err?.code === "string" ? err.code : undefined;
  let code = classify(sqlState, message);
  let text = `${context}: ${message}`;
  if (sqlState === "25006") text = `${context}: read() takes read-only statements only (${message})`;
  if (sqlState === "42601" && /cannot insert multiple commands/i.test(message)) code = "SYNTAX";
  return new DbError(code, text, { cause: error, ...(sqlState ? { backendCode: sqlState } : {}) });
}

export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}
