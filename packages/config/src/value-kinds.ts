import { isIP } from "node:net";
import { z } from "zod";
import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from "./units";

/**
 * How one variable's text becomes a typed value. zod does the checking; `expected` is the sentence our
 * error messages use instead of zod's, so every message reads "<VARIABLE>: expected <expected>, got <text>".
 */
export interface ValueKind<T> {
  /** Short label for the reference table. */
  readonly type: string;
  readonly expected: string;
  readonly schema: z.ZodType<T, string>;
  format(value: T): string;
  /** Hides secrets inside a value that is otherwise fine to show (passwords in URLs). */
  redact?(text: string): string;
}

/** setTimeout and setInterval fire at once for delays above this, so a longer duration would be a busy loop. */
export const maxTimerDelayMs = 2 ** 31 - 1;

function failWith(parse: (text: string) => unknown) {
  return (text: string, ctx: z.core.$RefinementCtx<string>) => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  };
}

const digits = z.string().regex(/^\d+$/);

export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER, expected?: string): ValueKind<number> {
  const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}-${max}`;
  return {
    type: "integer",
    expected: expected ?? `an integer ${range}`,
    schema: digits.transform(Number).pipe(z.number().int().min(min).max(max)),
    format: String,
  };
}

export function port(): ValueKind<number> {
  return { ...integer(0, 65535, "an integer port 0-65535"), type: "port" };
}

export function decimal(bounds: { greaterThan?: number; atLeast?: number; atMost?: number }): ValueKind<number> {
  let schema = z.number();
  const words: string[] = [];
  if (bounds.greaterThan !== undefined) {
    schema = schema.gt(bounds.greaterThan);
    words.push(`> ${bounds.greaterThan}`);
  }
  if (bounds.atLeast !== undefined) {
    schema = schema.gte(bounds.atLeast);
    words.push(`≥ ${bounds.atLeast}`);
  }
  if (bounds.atMost !== undefined) {
    schema = schema.lte(bounds.atMost);
    words.push(`≤ ${bounds.atMost}`);
  }
  const expected =
    bounds.greaterThan !== undefined && bounds.atMost !== undefined
      ? `a number in (${bounds.greaterThan}, ${bounds.atMost}]`
      : `a number ${words.join(" and ")}`;
  return {
    type: "number",
    expected,
    schema: z.string().regex(/^(\d+(\.\d+)?|\.\d+)$/).transform(Number).pipe(schema),
    format: String,
  };
}

const trueWords = new Set(["true", "1", "yes"]);
const falseWords = new Set(["false", "0", "no"]);

export function boolean(): ValueKind<boolean> {
  return {
    type: "boolean",
    expected: "true or false (also 1/0, yes/no)",
    schema: z
      .string()
      .transform((text) => text.toLowerCase())
      .refine((word) => trueWords.has(word) || falseWords.has(word))
      .transform((word) => trueWords.has(word)),
    format: String,
  };
}

export function oneOf<const T extends string>(values: readonly T[]): ValueKind<T> {
  return {
    type: values.join(" | "),
    expected: `one of ${values.map((value) => `"${value}"`).join(", ")}`,
    // Case-insensitive because LOG_LEVEL=INFO or DATABASE_TYPE=SQLite is what people type.
    schema: z
      .string()
      .transform((text) => text.toLowerCase())
      .pipe(z.enum(values as unknown as [T, ...T[]])) as unknown as z.ZodType<T, string>,
    format: String,
  };
}

export function duration(): ValueKind<number> {
  return {
    type: "duration",
    expected: `a duration: seconds ("30") or with a unit ("500ms", "30s", "5m", "1h"), above 0 and at most ${formatDurationMs(maxTimerDelayMs)}`,
    schema: z.string().transform(failWith(parseDurationMs)).pipe(z.number().int().min(1).max(maxTimerDelayMs)),
    format: formatDurationMs,
  };
}

export function size(): ValueKind<number> {
  return {
    type: "size",
    expected: `a size above 0: bytes ("1048576") or with a unit ("512MiB", "1GB", "64kB")`,
    schema: z.string().transform(failWith(parseSizeBytes)).pipe(z.number().int().min(1)),
    format: formatSizeBytes,
  };
}

export function semver(): ValueKind<string> {
  return {
    type: "version",
    expected: `a version x.y.z (e.g. "1.0.0")`,
    schema: z.string().regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/),
    format: String,
  };
}

/** Negative when a < b, 0 when equal, positive when a > b; both must be x.y.z. */
export function compareVersions(a: string, b: string): number {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

export function hexKey(): ValueKind<string> {
  return {
    type: "hex (64)",
    expected: "64 hexadecimal characters (a raw 32-byte Ed25519 key)",
    schema: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/)
      .transform((text) => text.toLowerCase()),
    format: String,
  };
}

const hostnamePattern = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function isHost(text: string): boolean {
  return isIP(text) !== 0 || hostnamePattern.test(text);
}

export function host(): ValueKind<string> {
  return {
    type: "host",
    expected: `a hostname or an IP address (e.g. "0.0.0.0", "::", "node-1.example")`,
    schema: z.string().refine(isHost),
    format: String,
  };
}

/** Splits "host:port" and "[v6]:port"; undefined when malformed or the port is not 1-65535. */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const hostPart = match[1] ?? match[2] ?? "";
  const portNumber = Number(match[3]);
  if (match[1] !== undefined ? isIP(hostPart) !== 6 : !isHost(hostPart)) return undefined;
  if (portNumber < 1 || portNumber > 65535) return undefined;
  return { host: hostPart, port: portNumber };
}

export function hostPort(): ValueKind<string> {
  return {
    type: "host:port",
    expected: `host:port with a port 1-65535 (e.g. "10.0.0.5:8080", "[::1]:8080")`,
    schema: z.string().refine((text) => splitHostPort(text) !== undefined),
    format: String,
  };
}

/** Comma-separated, each item trimmed; an empty item ("a,,b") is a mistake, not an item to skip. */
export function list(item: ValueKind<string>): ValueKind<string[]> {
  return {
    type: `list of ${item.type}`,
    expected: `a comma-separated list, each item ${item.expected}`,
    schema: z
      .string()
      // "" is the empty list (the default for an optional list); it is never one empty item.
      .transform((text) => (text === "" ? [] : text.split(",").map((part) => part.trim())))
      .pipe(z.array(item.schema)),
    format: (items) => items.join(","),
  };
}

export function text(options: { type?: string; expected?: string; pattern?: RegExp } = {}): ValueKind<string> {
  return {
    type: options.type ?? "string",
    expected: options.expected ?? "a non-empty string",
    schema: options.pattern ? z.string().regex(options.pattern) : z.string().min(1),
    format: String,
  };
}

/** A path to a file that must exist and be readable; loadConfig checks the file itself. */
export function filePath(): ValueKind<string> {
  return { ...text({ type: "file" }), expected: "a path to a readable file" };
}

// user:password@ in any URL-like text, parseable or not, so a typo in a URL does not leak the password.
function redactUrlPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

function isPostgresUrl(value: string): boolean {
  if (!/^postgres(ql)?:\/\//i.test(value)) return false;
  try {
    return new URL(value).hostname !== "";
  } catch {
    return false;
  }
}

export function postgresUrl(): ValueKind<string> {
  return {
    type: "url",
    expected: `a PostgreSQL URL "postgres://user:password@host:5432/database"`,
    schema: z.string().refine(isPostgresUrl),
    format: String,
    redact: redactUrlPassword,
  };
}

export function controlStoreUrl(): ValueKind<string> {
  return {
    type: "url",
    expected: `"sqlite:<path>" or a PostgreSQL URL "postgres://user:password@host:5432/database"`,
    schema: z.string().refine((value) => /^sqlite:.+$/.test(value) || isPostgresUrl(value)),
    format: String,
    redact: redactUrlPassword,
  };
}
