import { DbError } from "../db-error";
import { normalizeInteger, type SqlValue } from "../sql-value";
import type { ChangeEntry, Row, RowChange, SnapshotChunk } from "./types";

// Values travel and rest as JSON with type tags where JSON alone would lose something: a JSON number is a JS
// number (every finite double round-trips through JSON text exactly, except -0), a bigint (beyond ±2^53) is
// {"i": "digits"}, bytes are {"x": base64}, -0/NaN/±Infinity are {"r": "text"}. Strings, booleans and null
// are themselves.
export type EncodedValue = null | number | string | boolean | { i: string } | { x: string } | { r: string };

export function encodeValue(value: SqlValue): EncodedValue {
  if (value === null) return null;
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0) ? value : { r: Object.is(value, -0) ? "-0" : String(value) };
    case "bigint":
      return { i: value.toString() };
    case "string":
    case "boolean":
      return value;
    default:
      if (value instanceof Uint8Array) return { x: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
      throw new DbError("INVALID_ARGUMENT", `not a SQL value: ${typeof value}`);
  }
}

export function decodeValue(encoded: EncodedValue): SqlValue {
  if (encoded === null || typeof encoded !== "object") return encoded;
  if ("i" in encoded) return normalizeInteger(BigInt(encoded.i));
  if ("x" in encoded) return new Uint8Array(Buffer.from(encoded.x, "base64"));
  if ("r" in encoded) return encoded.r === "-0" ? -0 : Number(encoded.r);
  throw new DbError("INVALID_ARGUMENT", `unknown encoded value ${JSON.stringify(encoded)}`);
}

export function encodeRow(row: Row): Record<string, EncodedValue> {
  const encoded: Record<string, EncodedValue> = {};
  for (const name of Object.keys(row)) encoded[name] = encodeValue(row[name]!);
  return encoded;
}

export function decodeRow(encoded: Record<string, EncodedValue>): Row {
  const row: Row = {};
  for (const name of Object.keys(encoded)) row[name] = decodeValue(encoded[name]!);
  return row;
}

interface EncodedChange {
  t: string;
  k: Record<string, EncodedValue>;
  r?: Record<string, EncodedValue>;
  b: Record<string, EncodedValue> | null;
}

/** The `changes` of an entry as stored in a change log (compact JSON). */
export function encodeChanges(changes: readonly RowChange[]): string {
  return JSON.stringify(
    changes.map((change): EncodedChange => {
      const encoded: EncodedChange = { t: change.table, k: encodeRow(change.key), b: change.before ? encodeRow(change.before) : null };
      if (change.op === "upsert") encoded.r = encodeRow(change.row!);
      return encoded;
    }),
  );
}

export function decodeChanges(text: string): RowChange[] {
  return decodeChangeList(JSON.parse(text) as EncodedChange[]);
}

function decodeChangeList(parsed: EncodedChange[]): RowChange[] {
  return parsed.map((change): RowChange => {
    const decoded: RowChange = {
      table: change.t,
      op: change.r ? "upsert" : "delete",
      key: decodeRow(change.k),
      before: change.b ? decodeRow(change.b) : null,
    };
    if (change.r) decoded.row = decodeRow(change.r);
    return decoded;
  });
}

/** A change-log entry as text, for shipping between nodes; values keep their exact types. */
export function encodeChangeEntry(entry: ChangeEntry): string {
  return JSON.stringify({
    lsn: entry.lsn,
    txId: entry.txId,
    origin: entry.origin,
    originSeq: entry.originSeq,
    epoch: entry.epoch,
    committedAtMs: entry.committedAtMs,
    checksum: entry.checksum,
    ...(entry.ddl ? { ddl: entry.ddl } : {}),
    changes: JSON.parse(encodeChanges(entry.changes)) as unknown,
  });
}

export function decodeChangeEntry(text: string): ChangeEntry {
  const parsed = JSON.parse(text) as Omit<ChangeEntry, "changes"> & { changes: unknown };
  const entry: ChangeEntry = {
    lsn: parsed.lsn,
    txId: parsed.txId,
    origin: parsed.origin,
    originSeq: parsed.originSeq,
    epoch: parsed.epoch,
    committedAtMs: parsed.committedAtMs,
    checksum: parsed.checksum,
    changes: decodeChangeList(parsed.changes as EncodedChange[]),
  };
  if (parsed.ddl) entry.ddl = parsed.ddl;
  return entry;
}

/** A snapshot chunk as text, for shipping; values keep their exact types. */
export function encodeSnapshotChunk(chunk: SnapshotChunk): string {
  if (chunk.kind !== "rows") return JSON.stringify(chunk);
  return JSON.stringify({ ...chunk, rows: chunk.rows.map((row) => row.map(encodeValue)) });
}

export function decodeSnapshotChunk(text: string): SnapshotChunk {
  const parsed = JSON.parse(text) as SnapshotChunk;
  if (parsed.kind !== "rows") return parsed;
  return { ...parsed, rows: (parsed.rows as unknown as EncodedValue[][]).map((row) => row.map(decodeValue)) };
}

/** Roughly how many bytes a value takes on the wire (for bounding chunks and reads). */
export function approximateSize(value: SqlValue): number {
  if (value === null || typeof value === "boolean") return 4;
  if (typeof value === "number" || typeof value === "bigint") return 12;
  if (typeof value === "string") return value.length + 2;
  return Math.ceil((value.byteLength * 4) / 3) + 8;
}
