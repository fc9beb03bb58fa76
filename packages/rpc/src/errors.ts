import { Metadata, status as GrpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";

/**
 * The closed set of error codes every Mycelium API uses (a subset of gRPC's canonical codes).
 * Handle errors by code (and `reason`), never by message text.
 */
export const errorCodes = {
  /** The request is wrong and will stay wrong (bad SQL, unknown table, bad argument). Not retryable. */
  INVALID_ARGUMENT: { grpc: GrpcStatus.INVALID_ARGUMENT, retryable: false },
  /** The thing named does not exist (transaction, policy, node). Not retryable. */
  NOT_FOUND: { grpc: GrpcStatus.NOT_FOUND, retryable: false },
  ALREADY_EXISTS: { grpc: GrpcStatus.ALREADY_EXISTS, retryable: false },
  /** The system is not in a state that allows this (wrong network, old protocol, stale epoch). Not retryable as is. */
  FAILED_PRECONDITION: { grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false },
  /** The caller's identity may not do this. Not retryable. */
  PERMISSION_DENIED: { grpc: GrpcStatus.PERMISSION_DENIED, retryable: false },
  /** No valid identity was presented. Not retryable. */
  UNAUTHENTICATED: { grpc: GrpcStatus.UNAUTHENTICATED, retryable: false },
  /** A limit was reached (concurrent transactions, connections, queue). Retry later with backoff. */
  RESOURCE_EXHAUSTED: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: true },
  /** The transaction was aborted (conflict, lock timeout, participant voted no). Retry the whole transaction. */
  ABORTED: { grpc: GrpcStatus.ABORTED, retryable: true },
  /** A peer could not be reached. Retry idempotent calls with backoff. */
  UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, retryable: true },
  /** The deadline passed; the outcome may be unknown for writes. */
  DEADLINE_EXCEEDED: { grpc: GrpcStatus.DEADLINE_EXCEEDED, retryable: false },
  CANCELLED: { grpc: GrpcStatus.CANCELLED, retryable: false },
  UNIMPLEMENTED: { grpc: GrpcStatus.UNIMPLEMENTED, retryable: false },
  /** A bug or an unexpected failure; details are in the server's log under the reference given. */
  INTERNAL: { grpc: GrpcStatus.INTERNAL, retryable: false },
} as const;

export type ErrorCode = keyof typeof errorCodes;

const codeByGrpcStatus = new Map<number, ErrorCode>(
  (Object.keys(errorCodes) as ErrorCode[]).map((code) => [errorCodes[code].grpc, code]),
);

/** Metadata keys carrying the parts of an error that are not the status code and message. */
export const errorReasonKey = "x-mycelium-error-reason";
export const errorDetailsKey = "x-mycelium-error-details";

export interface MyceliumErrorOptions {
  /** A machine-readable sub-code in SCREAMING_SNAKE_CASE, e.g. STALE_EPOCH, LOCK_TIMEOUT. */
  reason?: string;
  /** Small string facts for programs (shard id, expected epoch, ...). */
  details?: Record<string, string>;
  cause?: unknown;
}

/** The one error type crossing every Mycelium boundary. */
export class MyceliumError extends Error {
  readonly code: ErrorCode;
  readonly reason: string | undefined;
  readonly details: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: MyceliumErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MyceliumError";
    this.code = code;
    this.reason = options.reason;
    this.details = options.details ?? {};
  }

  get retryable(): boolean {
    return errorCodes[this.code].retryable;
  }

  get grpcStatus(): number {
    return errorCodes[this.code].grpc;
  }

  override toString(): string {
    return `${this.code}${this.reason ? ` (${this.reason})` : ""}: ${this.message}`;
  }
}

export function isMyceliumError(error: unknown): error is MyceliumError {
  return error instanceof Error && (error as MyceliumError).name === "MyceliumError" && "code" in error;
}

/** Encode an error as a gRPC status for the wire. */
export function toStatus(error: MyceliumError): Partial<StatusObject> {
  const metadata = new Metadata();
  if (error.reason) metadata.set(errorReasonKey, error.reason);
  if (Object.keys(error.details).length > 0) metadata.set(errorDetailsKey, JSON.stringify(error.details));
  return { code: error.grpcStatus, details: error.message, metadata };
}

/** Decode a grpc-js error into a MyceliumError, naming the peer when the failure is on the way there. */
export function fromServiceError(error: ServiceError, context?: { method: string; address: string }): MyceliumError {
  const code = codeByGrpcStatus.get(error.code) ?? "INTERNAL";
  const reason = error.metadata?.get(errorReasonKey)[0];
  let details: Record<string, string> = {};
  const detailsText = error.metadata?.get(errorDetailsKey)[0];
  if (typeof detailsText === "string") {
    try {
      details = JSON.parse(detailsText) as Record<string, string>;
    } catch {
      // A peer sent details we cannot read; the code and message still stand.
    }
  }
  let message = error.details || error.message;
  // Transport failures carry no server message worth trusting alone; say where we were going.
  if (context && (code === "UNAVAILABLE" || code === "DEADLINE_EXCEEDED") && !reason) {
    message = `${context.method} to ${context.address}: ${message}`;
  }
  return new MyceliumError(code, message, {
    ...(typeof reason === "string" ? { reason } : {}),
    details,
    cause: error,
  });
}
