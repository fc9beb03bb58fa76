import type { Dialect } from "./types";
import { SqlError, positionOf } from "./errors";

/**
 * A small SQL lexer. The parser (libpg-query) does the real parsing; this lexer exists because several jobs
 * need exact character positions of the *original* text, which the parser does not give for everything:
 * counting and numbering `?` outside strings and comments, rejecting several statements, the fingerprint,
 * translating `?` to `$n`, SQLite-only syntax the PostgreSQL grammar lacks, and text-preserving rewrites.
 */
export type TokenType =
  | "word" // keyword or unquoted identifier
  | "quoted" // quoted identifier: "x" (both), `x` and [x] (sqlite)
  | "string" // '...', E'...', $tag$...$tag$, B'...'
  | "blob" // X'..'
  | "number"
  | "param" // ?
  | "op"
  | "lparen"
  | "rparen"
  | "comma"
  | "semicolon"
  | "dot"
  | "punct"; // [ ] : and anything else single-character

export interface Token {
  type: TokenType;
  start: number;
  end: number;
  /** Lower-cased text for words; raw text otherwise. */
  text: string;
  /** Parenthesis depth at this token (the parentheses themselves are at the outer depth). */
  depth: number;
  /** For `param`: 0-based ordinal among the statement's `?`. */
  param?: number;
}

const OP_CHARS = new Set("+-*/<>=~!@#%^&|`");
const OP_KEEPS_TRAILING_SIGN = new Set("~!@#%^&|`");

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function fail(sql: string, offset: number, message: string): never {
  const position = positionOf(sql, offset);
  throw new SqlError("PARSE_ERROR", `${message} (line ${position.line}, column ${position.column})`, position);
}

export function tokenize(sql: string, dialect: Dialect): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  let depth = 0;
  let params = 0;
  const push = (type: TokenType, start: number, end: number, text?: string): Token => {
    const token: Token = { type, start, end, text: text ?? sql.slice(start, end), depth };
    tokens.push(token);
    return token;
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    // whitespace
    if (c === 32 || c === 10 || c === 9 || c === 13 || c === 12 || c === 11) {
      i++;
      continue;
    }
    // -- comment
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf("\n", i);
      i = end === -1 ? n : end + 1;
      continue;
    }
    // /* comment */ (nested in PostgreSQL)
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      let nesting = 1;
      let j = i + 2;
      while (j < n && nesting > 0) {
        if (sql.charCodeAt(j) === 42 && sql.charCodeAt(j + 1) === 47) {
          nesting--;
          j += 2;
        } else if (dialect === "postgres" && sql.charCodeAt(j) === 47 && sql.charCodeAt(j + 1) === 42) {
          nesting++;
          j += 2;
        } else j++;
      }
      if (nesting > 0 && dialect === "postgres") fail(sql, i, "unterminated /* comment");
      i = j;
      continue;
    }
    // strings, with optional prefix E / X / B / N / U&
    if (c === 39 || ((c === 69 || c === 101 || c === 88 || c === 120 || c === 66 || c === 98 || c === 78 || c === 110) && sql.charCodeAt(i + 1) === 39)) {
      const start = i;
      const prefix = c === 39 ? "" : sql[i]!.toLowerCase();
      let j = c === 39 ? i + 1 : i + 2;
      const backslashEscapes = prefix === "e" && dialect === "postgres";
      for (;;) {
        if (j >= n) fail(sql, start, `unterminated quoted string at or near "${sql.slice(start, start + 20)}"`);
        const d = sql.charCodeAt(j);
        if (backslashEscapes && d === 92) {
          j += 2;
          continue;
        }
        if (d === 39) {
          if (sql.charCodeAt(j + 1) === 39) {
            j += 2;
            continue;
          }
          j++;
          break;
        }
        j++;
      }
      push(prefix === "x" ? "blob" : "string", start, j);
      i = j;
      continue;
    }
    // dollar-quoted string (PostgreSQL) or $1 / $name parameter
    if (c === 36) {
      if (dialect === "postgres") {
        const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
        if (m) {
          const tag = m[0];
          const close = sql.indexOf(tag, i + tag.length);
          if (close === -1) fail(sql, i, `unterminated dollar-quoted string at or near "${sql.slice(i, i + 20)}"`);
          push("string", i, close + tag.length);
          i = close + tag.length;
          continue;
        }
      }
      const m = /^\$[A-Za-z0-9_]+/.exec(sql.slice(i, i + 64));
      if (m) {
        const position = positionOf(sql, i);
        throw new SqlError(
          "UNSUPPORTED",
          `parameter "${m[0]}" is not supported: use ? placeholders (line ${position.line}, column ${position.column})`,
          position,
        );
      }
      push("punct", i, i + 1);
      i++;
      continue;
    }
    // quoted identifiers
    if (c === 34 || (dialect === "sqlite" && (c === 96 || c === 91))) {
      const close = c === 91 ? "]" : sql[i]!;
      const start = i;
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(close, j);
        if (k === -1) fail(sql, start, `unterminated quoted identifier at or near "${sql.slice(start, start + 20)}"`);
        if (close !== "]" && sql[k + 1] === close) {
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      push("quoted", start, j);
      i = j;
      continue;
    }
    // numbers
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      const start = i;
      let j = i;
      if (c === 48 && (sql[i + 1] === "x" || sql[i + 1] === "X") && /[0-9a-fA-F]/.test(sql[i + 2] ?? "")) {
        j = i + 2;
        while (j < n && /[0-9a-fA-F_]/.test(sql[j]!)) j++;
      } else {
        while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 95)) j++;
        if (sql.charCodeAt(j) === 46 && !(sql.charCodeAt(j + 1) === 46)) {
          j++;
          while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 95)) j++;
        }
        if ((sql[j] === "e" || sql[j] === "E") && (isDigit(sql.charCodeAt(j + 1)) || ((sql[j + 1] === "+" || sql[j + 1] === "-") && isDigit(sql.charCodeAt(j + 2))))) {
          j += 2;
          while (j < n && isDigit(sql.charCodeAt(j))) j++;
        }
      }
      push("number", start, j);
      i = j;
      continue;
    }
    // words (U&'...' strings start like words and are rare: they reach the parser unchanged)
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push("word", i, j, sql.slice(i, j).toLowerCase());
      i = j;
      continue;
    }
    if (c === 63) {
      // `?` is always a placeholder (PostgreSQL's jsonb ? operators are spelled jsonb_exists() instead).
      if (isDigit(sql.charCodeAt(i + 1))) {
        const position = positionOf(sql, i);
        throw new SqlError(
          "UNSUPPORTED",
          `numbered parameter "${/^\?\d+/.exec(sql.slice(i))![0]}" is not supported: use plain ? placeholders (line ${position.line}, column ${position.column})`,
          position,
        );
      }
      const token = push("param", i, i + 1);
      token.param = params++;
      i++;
      continue;
    }
    if (c === 40) {
      push("lparen", i, i + 1);
      depth++;
      i++;
      continue;
    }
    if (c === 41) {
      depth = Math.max(0, depth - 1);
      push("rparen", i, i + 1);
      i++;
      continue;
    }
    if (c === 44) {
      push("comma", i, i + 1);
      i++;
      continue;
    }
    if (c === 59) {
      push("semicolon", i, i + 1);
      i++;
      continue;
    }
    if (c === 46) {
      push("dot", i, i + 1);
      i++;
      continue;
    }
    if (c === 58) {
      if (sql.charCodeAt(i + 1) === 58) {
        push("op", i, i + 2);
        i += 2;
        continue;
      }
      if (dialect === "sqlite" && isIdentStart(sql.charCodeAt(i + 1))) {
        const position = positionOf(sql, i);
        throw new SqlError(
          "UNSUPPORTED",
          `named parameter "${/^:[A-Za-z0-9_]+/.exec(sql.slice(i))![0]}" is not supported: use ? placeholders (line ${position.line}, column ${position.column})`,
          position,
        );
      }
      push("punct", i, i + 1);
      i++;
      continue;
    }
    if (OP_CHARS.has(sql[i]!) && !(dialect === "sqlite" && c === 96)) {
      if (dialect === "sqlite" && c === 64 && isIdentStart(sql.charCodeAt(i + 1))) {
        const position = positionOf(sql, i);
        throw new SqlError(
          "UNSUPPORTED",
          `named parameter "${/^@[A-Za-z0-9_]+/.exec(sql.slice(i))![0]}" is not supported: use ? placeholders (line ${position.line}, column ${position.column})`,
          position,
        );
      }
      let j = i;
      while (j < n && OP_CHARS.has(sql[j]!)) {
        if (j > i && ((sql[j] === "-" && sql[j + 1] === "-") || (sql[j] === "/" && sql[j + 1] === "*"))) break;
        j++;
      }
      // PostgreSQL's rule: a multi-character operator cannot end in + or - unless it contains ~!@#%^&|`,
      // so "=-1" is "=" followed by "-1".
      if (j - i > 1) {
        let special = false;
        for (let k = i; k < j; k++) if (OP_KEEPS_TRAILING_SIGN.has(sql[k]!)) special = true;
        if (!special) while (j - i > 1 && (sql[j - 1] === "+" || sql[j - 1] === "-")) j--;
      }
      push("op", i, j);
      i = j;
      continue;
    }
    push("punct", i, i + 1);
    i++;
  }
  return tokens;
}

/** The number of `?` placeholders, counted by the lexer (outside strings, identifiers and comments). */
export function countParameters(tokens: readonly Token[]): number {
  let count = 0;
  for (const token of tokens) if (token.type === "param") count++;
  return count;
}

/** Unquote a quoted-identifier token: "a""b" -> a"b, `x` -> x, [x] -> x. */
export function unquoteIdentifier(text: string): string {
  const open = text[0];
  const inner = text.slice(1, -1);
  if (open === "[") return inner;
  return inner.split(open! + open!).join(open!);
}
