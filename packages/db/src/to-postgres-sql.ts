/**
 * Rewrites positional `?` parameters as PostgreSQL's `$1, $2, …`, leaving alone every `?` inside a string
 * literal ('…', E'…' with backslash escapes, $tag$…$tag$), a quoted identifier ("…") or a comment (-- and
 * nested /* … *\/). PostgreSQL's own `?` operators (jsonb `?`, `?|`, `?&`) cannot be told apart from a
 * parameter and are rewritten too: use `jsonb_exists()` and friends in Mycelium SQL.
 */
export function toPostgresSql(sql: string): string {
  let out = "";
  let index = 0;
  let parameter = 0;
  const length = sql.length;
  while (index < length) {
    const char = sql[index]!;
    const next = sql[index + 1];
    if (char === "?") {
      parameter += 1;
      out += `$${parameter}`;
      index += 1;
    } else if (char === "'") {
      const escapes = isEscapeStringPrefix(sql, index);
      const end = skipQuoted(sql, index, "'", escapes);
      out += sql.slice(index, end);
      index = end;
    } else if (char === '"') {
      const end = skipQuoted(sql, index, '"', false);
      out += sql.slice(index, end);
      index = end;
    } else if (char === "-" && next === "-") {
      const newline = sql.indexOf("\n", index);
      const end = newline === -1 ? length : newline + 1;
      out += sql.slice(index, end);
      index = end;
    } else if (char === "/" && next === "*") {
      const end = skipBlockComment(sql, index);
      out += sql.slice(index, end);
      index = end;
    } else if (char === "$" && !isIdentifierChar(sql[index - 1])) {
      const tag = dollarQuoteTag(sql, index);
      if (tag === null) {
        out += char;
        index += 1;
      } else {
        const close = sql.indexOf(tag, index + tag.length);
        const end = close === -1 ? length : close + tag.length;
        out += sql.slice(index, end);
        index = end;
      }
    } else {
      out += char;
      index += 1;
    }
  }
  return out;
}

/** `E'…'` / `e'…'` strings treat backslash as an escape; a plain `'…'` does not (standard_conforming_strings). */
function isEscapeStringPrefix(sql: string, quoteIndex: number): boolean {
  const previous = sql[quoteIndex - 1];
  return (previous === "E" || previous === "e") && !isIdentifierChar(sql[quoteIndex - 2]);
}

function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let index = start + 1;
  while (index < sql.length) {
    const char = sql[index];
    if (backslashEscapes && char === "\\") {
      index += 2;
    } else if (char === quote) {
      if (sql[index + 1] === quote) index += 2; // doubled quote inside the literal
      else return index + 1;
    } else {
      index += 1;
    }
  }
  return sql.length;
}

function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let index = start;
  while (index < sql.length) {
    if (sql[index] === "/" && sql[index + 1] === "*") {
      depth += 1;
      index += 2;
    } else if (sql[index] === "*" && sql[index + 1] === "/") {
      depth -= 1;
      index += 2;
      if (depth === 0) return index;
    } else {
      index += 1;
    }
  }
  return sql.length;
}

/** `$tag$` or `$$` starting at `start`, or null when the `$` is not a dollar quote (e.g. `$1`). */
function dollarQuoteTag(sql: string, start: number): string | null {
  const match = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start, start + 66));
  return match ? match[0] : null;
}

function isIdentifierChar(char: string | undefined): boolean {
  return char !== undefined && /[A-Za-z0-9_$]/.test(char);
}
