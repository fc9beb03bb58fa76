import type { Token } from "./lexer";

/** Keywords after which a + or - is a sign rather than a binary operator. */
const OPERAND_EXPECTED = new Set([
  "select", "where", "and", "or", "not", "in", "between", "values", "limit", "offset", "then", "else", "when",
  "case", "returning", "by", "having", "on", "is", "like", "distinct", "all", "any", "some", "return", "default",
]);

/**
 * The statement's shape: keywords and unquoted names lower-cased, numeric / string / blob literals (with their
 * sign) replaced by `?`, one space between tokens, comments and trailing semicolons dropped. Two statements that
 * differ only in literal values (or in literal-vs-placeholder) have the same fingerprint.
 */
export function fingerprintTokens(tokens: readonly Token[]): string {
  const parts: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    switch (token.type) {
      case "semicolon":
        continue;
      case "number":
      case "string":
      case "blob":
      case "param":
        parts.push("?");
        continue;
      case "op": {
        const next = tokens[i + 1];
        if ((token.text === "-" || token.text === "+") && next && (next.type === "number" || next.type === "param") && signPosition(tokens[i - 1])) {
          continue; // the sign belongs to the literal that follows
        }
        parts.push(token.text);
        continue;
      }
      default:
        parts.push(token.text);
    }
  }
  // One space between tokens, none inside parentheses or around dots and before commas.
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const previous = parts[i - 1];
    if (i > 0 && part !== ")" && part !== "," && part !== "." && previous !== "(" && previous !== ".") out += " ";
    out += part;
  }
  return out;
}

function signPosition(previous: Token | undefined): boolean {
  if (!previous) return true;
  if (previous.type === "op" || previous.type === "lparen" || previous.type === "comma") return true;
  return previous.type === "word" && OPERAND_EXPECTED.has(previous.text);
}
