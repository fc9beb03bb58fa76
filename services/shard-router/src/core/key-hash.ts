import { murmur3 } from "./murmur3";

export type KeyValue = null | number | bigint | string | boolean | Uint8Array;

/** The hash space is [0, 2^32); the last shard's range ends at hashSpaceEnd. */
export const hashSpaceEnd = 2 ** 32;

const encoder = new TextEncoder();

/**
 * Hash of a shard key (one value per key column). Values are first put in a canonical form so that
 * the same row always lands on the same shard however the client spelled the key: integers (number,
 * bigint, or an integral real) hash alike, booleans hash as 0/1 (SQLite stores them so), and a tag
 * byte per type keeps 1 and '1' apart (they are different keys in a TEXT column).
 */
export function hashKey(values: readonly KeyValue[]): number {
  const parts: Uint8Array[] = [];
  for (const value of values) parts.push(canonicalBytes(value));
  const total = parts.reduce((sum, part) => sum + part.length + 4, 0);
  const buffer = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    // Length-prefixed so that ("ab","c") and ("a","bc") differ.
    new DataView(buffer.buffer).setUint32(offset, part.length);
    buffer.set(part, offset + 4);
    offset += part.length + 4;
  }
  return murmur3(buffer);
}

function canonicalBytes(value: KeyValue): Uint8Array {
  if (value === null) return Uint8Array.of(0);
  if (typeof value === "boolean") return integerBytes(value ? 1n : 0n);
  if (typeof value === "bigint") return integerBytes(value);
  if (typeof value === "number") {
    if (Number.isInteger(value)) return integerBytes(BigInt(value));
    const bytes = new Uint8Array(9);
    bytes[0] = 2;
    new DataView(bytes.buffer).setFloat64(1, value);
    return bytes;
  }
  if (typeof value === "string") return withTag(3, encoder.encode(value));
  return withTag(4, value);
}

function integerBytes(value: bigint): Uint8Array {
  return withTag(1, encoder.encode(value.toString()));
}

function withTag(tag: number, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(body.length + 1);
  bytes[0] = tag;
  bytes.set(body, 1);
  return bytes;
}

/** Split [0, 2^32) into `count` contiguous ranges of (nearly) equal width. */
export function evenHashRanges(count: number): Array<{ start: number; end: number }> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`shard count must be a positive integer, got ${count}`);
  const ranges: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < count; i++) {
    ranges.push({ start: Math.floor((i * hashSpaceEnd) / count), end: Math.floor(((i + 1) * hashSpaceEnd) / count) });
  }
  return ranges;
}
