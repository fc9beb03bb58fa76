import type { SqlValue } from "@mycelium/sql";

/**
 * A custom shard function maps a shard key to a point of the 32-bit hash space; shards own ranges of
 * that space as with the built-in hash. It must be deterministic and stable forever: rows already
 * stored were placed by it.
 */
export interface ShardFunction {
  readonly name: string;
  hash(key: readonly SqlValue[]): number;
}

const registry = new Map<string, ShardFunction>();

/** Register a custom shard function (at start, before any table uses it). */
export function registerShardFunction(fn: ShardFunction): void {
  if (!/^[a-z][a-z0-9_]*$/.test(fn.name)) throw new Error(`shard function name "${fn.name}" must be lower_snake_case`);
  if (registry.has(fn.name)) throw new Error(`shard function "${fn.name}" is already registered`);
  registry.set(fn.name, fn);
}

export function getShardFunction(name: string): ShardFunction {
  const fn = registry.get(name);
  if (!fn) {
    const known = [...registry.keys()];
    throw new Error(`no shard function named "${name}" is registered${known.length ? ` (registered: ${known.join(", ")})` : ""}`);
  }
  return fn;
}

export function hasShardFunction(name: string): boolean {
  return registry.has(name);
}

export function shardFunctionNames(): string[] {
  return [...registry.keys()];
}

/**
 * Built in as an example and for tests: the first key column taken as an unsigned 32-bit integer, so
 * keys 0..2^32-1 are laid out in order over the shards (useful when keys are already uniform ids).
 */
registerShardFunction({
  name: "identity_u32",
  hash(key) {
    const value = key[0];
    const n = typeof value === "bigint" ? Number(BigInt.asUintN(32, value)) : typeof value === "number" ? value >>> 0 : 0;
    return n;
  },
});
