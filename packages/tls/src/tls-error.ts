export type TlsErrorCode =
  /** A spiffe:// identity is malformed, missing, or a certificate carries more than one. */
  | "INVALID_IDENTITY"
  /** A certificate, key or CA file does not parse, or has the wrong shape (a CA that is not a CA). */
  | "INVALID_CERTIFICATE"
  /** The private key does not belong to the certificate. */
  | "KEY_MISMATCH"
  /** The certificate was not issued by the cluster CA. */
  | "UNTRUSTED"
  /** The certificate (or the CA) is expired or not yet valid. */
  | "EXPIRED"
  /** A file could not be read or written. */
  | "FILE_ERROR";

/**
 * The one error type of this package. None of these is retryable as such: each needs new material on disk,
 * which a reloading credential picks up by itself.
 */
export class TlsError extends Error {
  override readonly name = "TlsError";

  constructor(
    readonly code: TlsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
