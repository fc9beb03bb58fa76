import type { Row, Value } from "./gen/mycelium/common/v1/value";

/** A SQL value as TypeScript code sees it. Integers beyond ±(2^53 − 1) are bigints. */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

/** Encode a SQL value for the wire. Integral bigints within the safe range travel as plain integers. */
export function toValue(value: SqlValue | undefined): Value {
  if (value === null || value === undefined) return { kind: undefined };
  switch (typeof value) {
    case "number":
      return Number.isSafeInteger(value) ? { kind: { $case: "integer", value } } : { kind: { $case: "real", value } };
    case "bigint":
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? { kind: { $case: "integer", value: Number(value) } }
        : { kind: { $case: "bigInteger", value: value.toString() } };
    case "string":
      return { kind: { $case: "text", value } };
    case "boolean":
      return { kind: { $case: "boolean", value } };
    default:
      if (value instanceof Uint8Array) return { kind: { $case: "blob", value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) } };
      throw new TypeError(`cannot send a ${typeof value} as a SQL value`);
  }
}

export function fromValue(value: Value | undefined): SqlValue {
  const kind = value?.kind;
  if (!kind) return null;
  switch (kind.$case) {
    case "integer":
    case "real":
    case "text":
    case "boolean":
      return kind.value;
    case "blob":
      return new Uint8Array(kind.value.buffer, kind.value.byteOffset, kind.value.byteLength);
    case "bigInteger":
      return BigInt(kind.value);
  }
}

export function toRow(values: readonly SqlValue[]): Row {
  return { values: values.map(toValue) };
}

export function fromRow(row: Row): SqlValue[] {
  return row.values.map(fromValue);
}
