/**
 * Every expected failure of this package is a SqlError with one of these codes. None is retryable: the same
 * statement fails the same way again.
 * - PARSE_ERROR: the text is not valid SQL for the dialect (message carries the parser's message and position).
 * - MULTIPLE_STATEMENTS: more than one statement in one string.
 * - NONDETERMINISTIC: thrown by `assertDeterministic` for a write using random(), now() and the like.
 * - UNSUPPORTED: valid SQL this package cannot analyse or rewrite safely (message says what).
 * - PARAMETER_MISMATCH: the number of parameters differs from the number of `?` placeholders.
 */
export type SqlErrorCode =
  | "PARSE_ERROR"
  | "MULTIPLE_STATEMENTS"
  | "NONDETERMINISTIC"
  | "UNSUPPORTED"
  | "PARAMETER_MISMATCH";

export interface SqlPosition {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** 0-based character offset into the statement text. */
  offset: number;
}

export class SqlError extends Error {
  override readonly name = "SqlError";
  readonly code: SqlErrorCode;
  readonly position?: SqlPosition;

  constructor(code: SqlErrorCode, message: string, position?: SqlPosition) {
    super(message);
    this.code = code;
    if (position) this.position = position;
  }
}

export function positionOf(sql: string, offset: number): SqlPosition {
  const clamped = Math.max(0, Math.min(offset, sql.length));
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < clamped; i++) {
    if (sql.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: clamped - lineStart + 1, offset: clamped };
}
