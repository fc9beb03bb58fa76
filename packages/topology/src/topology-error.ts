/**
 * Every failure of the control store is a TopologyError with one code from this closed set. A failed
 * compare-and-set is not an error: `commit` reports it as a result (`{ ok: false, … }`).
 *
 * | code             | meaning                                                              | retryable |
 * |------------------|----------------------------------------------------------------------|-----------|
 * | INVALID_ARGUMENT | bad key, value, batch or option                                      | no        |
 * | CONFLICT         | a read-modify-write helper lost every compare-and-set attempt        | yes       |
 * | BUSY             | the store stayed locked by other writers for longer than allowed     | yes       |
 * | UNAVAILABLE      | the backend cannot be reached                                        | yes       |
 * | CONFIG           | the backend cannot work as configured (bad URL, auth, schema)        | no        |
 * | CLOSED           | the store was closed                                                 | no        |
 * | INTERNAL         | a broken invariant or an unexpected backend error                   | no        |
 */
export type TopologyErrorCode = "INVALID_ARGUMENT" | "CONFLICT" | "BUSY" | "UNAVAILABLE" | "CONFIG" | "CLOSED" | "INTERNAL";

const retryable: ReadonlySet<TopologyErrorCode> = new Set<TopologyErrorCode>(["CONFLICT", "BUSY", "UNAVAILABLE"]);

export class TopologyError extends Error {
  override readonly name = "TopologyError";
  readonly code: TopologyErrorCode;
  readonly retryable: boolean;

  constructor(code: TopologyErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = retryable.has(code);
  }
}

/** Maps a backend error (better-sqlite3, pg, network) to a TopologyError. */
export function toTopologyError(error: unknown, context: string): TopologyError {
  if (error instanceof TopologyError) return error;
  const err = error as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(error);
  const code = typeof err?.code === "string" ? err.code : "";
  const text = `${context}: ${message}`;
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return new TopologyError("BUSY", text, { cause: error });
  if (code.startsWith("SQLITE_CONSTRAINT") || code.startsWith("23")) return new TopologyError("INVALID_ARGUMENT", text, { cause: error });
  if (code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_READONLY") || code === "SQLITE_NOTADB") {
    return new TopologyError("CONFIG", text, { cause: error });
  }
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "EPIPE"].includes(code) || code.startsWith("08") || code.startsWith("57P")) {
    return new TopologyError("UNAVAILABLE", text, { cause: error });
  }
  if (code === "40001" || code === "40P01" || code === "55P03" || code === "53300") return new TopologyError("BUSY", text, { cause: error });
  if (code.startsWith("28") || code === "3D000" || /does not support SSL/i.test(message)) return new TopologyError("CONFIG", text, { cause: error });
  if (!code && /timeout exceeded when trying to connect|Connection terminated/i.test(message)) {
    return new TopologyError("UNAVAILABLE", text, { cause: error });
  }
  return new TopologyError("INTERNAL", text, { cause: error });
}
