import * as pgQuery from "libpg-query";
import type { Dialect } from "./types";
import { SqlError, positionOf } from "./errors";
import { tokenize, type Token } from "./lexer";

/** A parse-tree node as libpg-query returns it: `{ NodeKind: body }`. */
// The PostgreSQL tree has ~250 node kinds; this package handles the ones that matter by name and walks the
// rest generically, so it reads nodes through this loose type rather than the generated union.
export type PgNode = Record<string, any>;

let loaded = false;
let loading: Promise<void> | undefined;

/**
 * Loads the PostgreSQL parser (WebAssembly). Call once per process (idempotent) before `analyze`; the
 * rest of the API is synchronous.
 */
export function loadSqlParser(): Promise<void> {
  if (loaded) return Promise.resolve();
  loading ??= pgQuery.loadModule().then(() => {
    loaded = true;
  });
  return loading;
}

export function isSqlParserLoaded(): boolean {
  return loaded;
}

export type SqliteConflictMode = "replace" | "ignore" | "abort" | "fail" | "rollback";

export type TransactionAction = "begin" | "commit" | "rollback" | "savepoint" | "release" | "rollback_to";

export interface ParsedStatement {
  sql: string;
  dialect: Dialect;
  tokens: Token[];
  /** Tokens of the statement proper (trailing semicolons removed). */
  body: Token[];
  /** The statement node, e.g. `{ SelectStmt: {...} }`; undefined for SQLite statements handled without the parser. */
  root?: PgNode;
  /** INSERT OR REPLACE / OR IGNORE / REPLACE INTO (SQLite), rewritten to a plain INSERT before parsing. */
  sqliteConflict?: SqliteConflictMode;
  /** Set for SQLite statements the PostgreSQL grammar does not have (BEGIN IMMEDIATE, PRAGMA, ...). */
  sqliteOther?: { transaction?: TransactionAction };
  /** Maps a parser location (byte offset into the text given to the parser) to an offset into `sql`. */
  originalOffset(location: number): number;
}

interface Edit {
  start: number;
  end: number;
  replacement: string;
}

const SQLITE_ONLY_STATEMENTS = new Set(["pragma", "vacuum", "analyze", "attach", "detach", "reindex"]);
const TRANSACTION_WORDS: Record<string, TransactionAction> = {
  begin: "begin",
  commit: "commit",
  end: "commit",
  rollback: "rollback",
  savepoint: "savepoint",
  release: "release",
};

export function parseStatement(sql: string, dialect: Dialect): ParsedStatement {
  if (!loaded) {
    throw new Error("@mycelium/sql: the SQL parser is not loaded; call `await loadSqlParser()` once at start");
  }
  const tokens = tokenize(sql, dialect);
  let end = tokens.length;
  const firstSemicolon = tokens.findIndex((t) => t.type === "semicolon");
  if (firstSemicolon !== -1) {
    const next = tokens.slice(firstSemicolon).find((t) => t.type !== "semicolon");
    if (next) {
      const position = positionOf(sql, next.start);
      throw new SqlError(
        "MULTIPLE_STATEMENTS",
        `only one statement per call is allowed; a second statement starts at line ${position.line}, column ${position.column}`,
        position,
      );
    }
    end = firstSemicolon;
  }
  const body = tokens.slice(0, end);
  if (body.length === 0) throw new SqlError("PARSE_ERROR", "empty statement", positionOf(sql, 0));

  const first = body[0]!;
  if (dialect === "sqlite" && first.type === "word") {
    const transaction = TRANSACTION_WORDS[first.text];
    if (transaction || SQLITE_ONLY_STATEMENTS.has(first.text)) {
      // SQLite's own statements (BEGIN IMMEDIATE, PRAGMA, ...) are not in the PostgreSQL grammar; they touch
      // no table data and SQLite validates them when they run.
      const action =
        transaction === "rollback" && body.some((t) => t.type === "word" && t.text === "to") ? "rollback_to" : transaction;
      return { sql, dialect, tokens, body, sqliteOther: action ? { transaction: action } : {}, originalOffset: (x) => x };
    }
  }

  const edits: Edit[] = [];
  let sqliteConflict: SqliteConflictMode | undefined;
  for (let i = 0; i < body.length; i++) {
    const token = body[i]!;
    if (token.type === "param") {
      edits.push({ start: token.start, end: token.end, replacement: `$${token.param! + 1}` });
      continue;
    }
    if (dialect !== "sqlite") continue;
    if (token.type === "quoted" && token.text[0] !== '"') {
      const inner = token.text[0] === "[" ? token.text.slice(1, -1) : token.text.slice(1, -1).split("``").join("`");
      edits.push({ start: token.start, end: token.end, replacement: `"${inner.split('"').join('""')}"` });
    } else if (token.type === "op" && token.text === "==") {
      edits.push({ start: token.start, end: token.end, replacement: "=" });
    } else if (token.type === "word") {
      if (i === 0 && token.text === "replace" && body[1]?.type === "word" && body[1].text === "into") {
        edits.push({ start: token.start, end: token.end, replacement: "INSERT" });
        sqliteConflict = "replace";
      } else if (i === 1 && token.text === "or" && body[0]!.text === "insert" && body[2]?.type === "word") {
        const mode = body[2].text;
        if (mode === "replace" || mode === "ignore" || mode === "abort" || mode === "fail" || mode === "rollback") {
          sqliteConflict = mode;
          edits.push({ start: token.start, end: body[2].end, replacement: "" });
          i++;
        }
      } else if (token.text === "autoincrement" && token.depth > 0) {
        edits.push({ start: token.start, end: token.end, replacement: "" });
      } else if (token.depth === 0 && first.text === "create" && (token.text === "without" || token.text === "strict")) {
        // CREATE TABLE ... ) WITHOUT ROWID, STRICT: table options that change nothing analysed here.
        const previous = body[i - 1];
        const last = token.text === "without" ? body[i + 1] : token;
        if (previous && (previous.type === "rparen" || previous.type === "comma") && last && (last === token || last.text === "rowid")) {
          edits.push({ start: previous.type === "comma" ? previous.start : token.start, end: last.end, replacement: "" });
          if (last !== token) i++;
        }
      } else if (token.text === "limit") {
        // SQLite's LIMIT offset, count.
        const a = body[i + 1];
        const comma = body[i + 2];
        const b = body[i + 3];
        if (a && b && comma?.type === "comma" && comma.depth === token.depth && isSimpleOperand(a) && isSimpleOperand(b)) {
          edits.push({ start: token.start, end: b.end, replacement: `LIMIT ${operandText(sql, b)} OFFSET ${operandText(sql, a)}` });
          i += 3;
        }
      }
    }
  }

  const text = applyEdits(sql, edits);
  const originalOffset = offsetMapper(text, edits);
  let result: { stmts?: Array<{ stmt?: PgNode }> };
  try {
    result = pgQuery.parseSync(text) as unknown as typeof result;
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const message = error instanceof Error ? error.message : String(error);
    const offset = details?.cursorPosition !== undefined ? originalOffset(details.cursorPosition, true) : 0;
    const position = positionOf(sql, offset);
    throw new SqlError("PARSE_ERROR", `${message} (line ${position.line}, column ${position.column})`, position);
  }
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1 || !stmts[0]!.stmt) {
    // The lexer already rejects a second statement; this is the parser disagreeing with it.
    throw new SqlError("MULTIPLE_STATEMENTS", `expected exactly one statement, found ${stmts.length}`);
  }
  const parsed: ParsedStatement = { sql, dialect, tokens, body, root: stmts[0]!.stmt!, originalOffset: (x) => originalOffset(x, false) };
  if (sqliteConflict) parsed.sqliteConflict = sqliteConflict;
  return parsed;
}

function isSimpleOperand(token: Token): boolean {
  return token.type === "number" || token.type === "param";
}
function operandText(sql: string, token: Token): string {
  return token.type === "param" ? `$${token.param! + 1}` : sql.slice(token.start, token.end);
}

function applyEdits(sql: string, edits: Edit[]): string {
  if (edits.length === 0) return sql;
  let out = "";
  let at = 0;
  for (const edit of edits) {
    out += sql.slice(at, edit.start) + edit.replacement;
    at = edit.end;
  }
  return out + sql.slice(at);
}

/**
 * Builds the map from a location in the parser's text (UTF-8 bytes, after edits) back to a character offset
 * in the caller's text.
 */
function offsetMapper(text: string, edits: Edit[]): (location: number, isCharacterOffset: boolean) => number {
  // libpg-query reports node locations in bytes; error cursor positions in characters.
  let byteToChar: Int32Array | undefined;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(text)) {
    const bytes = Buffer.byteLength(text, "utf8");
    byteToChar = new Int32Array(bytes + 1);
    let b = 0;
    for (let c = 0; c < text.length; c++) {
      const code = text.codePointAt(c)!;
      const width = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
      for (let k = 0; k < width; k++) byteToChar[b + k] = c;
      b += width;
      if (code >= 0x10000) c++;
    }
    byteToChar[bytes] = text.length;
  }
  // Edits in the parser's coordinates.
  const mapped: Array<{ newStart: number; newEnd: number; start: number; end: number }> = [];
  let shift = 0;
  for (const edit of edits) {
    const newStart = edit.start + shift;
    const newEnd = newStart + edit.replacement.length;
    mapped.push({ newStart, newEnd, start: edit.start, end: edit.end });
    shift += edit.replacement.length - (edit.end - edit.start);
  }
  return (location, isCharacterOffset) => {
    let position = location;
    if (!isCharacterOffset && byteToChar) position = byteToChar[Math.min(location, byteToChar.length - 1)]!;
    if (isCharacterOffset && /[\uD800-\uDBFF]/.test(text)) {
      // The parser counts code points; JavaScript strings count UTF-16 units.
      let units = 0;
      for (let points = 0; points < location && units < text.length; points++) units += text.codePointAt(units)! > 0xffff ? 2 : 1;
      position = units;
    }
    let result = position;
    for (const edit of mapped) {
      if (position < edit.newStart) break;
      if (position < edit.newEnd) {
        result = edit.start;
        break;
      }
      result = position - edit.newEnd + edit.end;
    }
    return result;
  };
}
