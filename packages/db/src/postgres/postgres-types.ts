import { types } from "pg";
import { normalizeInteger, type SqlValue } from "../sql-value";

const parseBytea = types.getTypeParser(17, "text") as (value: string) => Buffer;

/**
 * How PostgreSQL values become SqlValues, per pool (the global pg type registry is left alone): int8 as number
 * within ±(2^53 − 1) and bigint beyond; smaller integers and floats as number; bool as boolean; bytea as bytes;
 * everything else — numeric, dates and times, json, arrays — as PostgreSQL's own text, so nothing is rounded or
 * reinterpreted (no Date objects, no parsed JSON).
 */
export const postgresTypes = {
  getTypeParser(oid: number): (value: string) => SqlValue {
    switch (oid) {
      case 20: // int8
        return (value) => normalizeInteger(BigInt(value));
      case 21: // int2
      case 23: // int4
      case 26: // oid
        return (value) => Number.parseInt(value, 10);
      case 700: // float4
      case 701: // float8
        return (value) => Number.parseFloat(value);
      case 16: // bool
        return (value) => value === "t" || value === "true";
      case 17: // bytea
        return (value) => parseBytea(value);
      default:
        return (value) => value;
    }
  },
};

export function toPostgresParam(value: SqlValue): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}
