import { common, fromValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { compareKeyValues } from "./key-values";
import { hasShardFunction, shardFunctionNames } from "./shard-functions";
import type { TableSchema } from "./table-layout";

export interface PolicyDefaults {
  /** MYCELIUM_DEFAULT_REPLICATION_FACTOR */
  replicationFactor: number;
  /** MYCELIUM_MIN_VALIDATOR_COPIES */
  minValidatorCopies: number;
  /** Shards of a new hash-sharded table when the policy does not say. @default 8 */
  shardCount: number;
}

export const maxShardsPerTable = 4096;
const identifier = /^[a-z_][a-z0-9_]*$/;

/**
 * Check a policy from a user and fill in its defaults. Every problem found is reported at once, one
 * per line, as INVALID_ARGUMENT. `existing` is the stored policy when the table already has one.
 */
export function normalizePolicy(
  input: common.TablePolicy,
  defaults: PolicyDefaults,
  existing: common.TablePolicy | null,
  schema: TableSchema | null,
): common.TablePolicy {
  const problems: string[] = [];
  const table = input.table.trim().toLowerCase();
  if (!identifier.test(table)) problems.push(`table name "${input.table}" must be a plain identifier (letters, digits, _)`);
  // Node-agents keep their own tables in every shard under these names (e.g. _mycelium_migrations).
  else if (table.startsWith("_myc")) problems.push(`table names starting with _myc are reserved for Mycelium's own tables`);

  const replicationFactor = input.replicationFactor ?? existing?.replicationFactor ?? defaults.replicationFactor;
  if (!(replicationFactor > 0 && replicationFactor <= 1)) {
    problems.push(`replication_factor ${replicationFactor} is outside (0, 1]: it is the fraction of eligible nodes holding each shard`);
  }
  const minValidatorCopies = input.minValidatorCopies ?? existing?.minValidatorCopies ?? defaults.minValidatorCopies;
  if (!Number.isInteger(minValidatorCopies) || minValidatorCopies < 0) {
    problems.push(`min_validator_copies ${minValidatorCopies} must be a whole number ≥ 0`);
  }

  const shardKeys = input.shardKeys.map((key) => key.trim().toLowerCase());
  if (shardKeys.length === 0) problems.push("shard_keys is empty: name the column(s) that decide a row's shard");
  for (const key of shardKeys) if (!identifier.test(key)) problems.push(`shard key "${key}" is not a plain column name`);
  if (new Set(shardKeys).size !== shardKeys.length) problems.push(`shard_keys ${shardKeys.join(", ")} repeats a column`);

  let shardFunction = input.shardFunction;
  if (shardFunction === common.ShardFunction.SHARD_FUNCTION_UNSPECIFIED) {
    shardFunction = input.rangeSharding ? common.ShardFunction.SHARD_FUNCTION_RANGE : common.ShardFunction.SHARD_FUNCTION_HASH;
  }
  const rangeSharding = shardFunction === common.ShardFunction.SHARD_FUNCTION_RANGE;
  if (input.rangeSharding && !rangeSharding) problems.push("range_sharding is set but shard_function is not RANGE");
  if (shardFunction === common.ShardFunction.SHARD_FUNCTION_CUSTOM) {
    if (!input.customFunction) problems.push("shard_function CUSTOM needs custom_function, the name of a registered shard function");
    else if (!hasShardFunction(input.customFunction)) {
      const known = shardFunctionNames();
      problems.push(`no shard function named "${input.customFunction}" is registered${known.length ? ` (registered: ${known.join(", ")})` : ""}`);
    }
  } else if (input.customFunction) {
    problems.push("custom_function is set but shard_function is not CUSTOM");
  }
  if (rangeSharding && shardKeys.length !== 1) problems.push("range sharding needs exactly one shard key column");

  const splitPoints = input.rangeSplitPoints.map(fromValue);
  if (!rangeSharding && splitPoints.length > 0) problems.push("range_split_points are only for range sharding");
  for (let i = 1; i < splitPoints.length; i++) {
    if (compareKeyValues(splitPoints[i - 1]!, splitPoints[i]!) >= 0) {
      problems.push("range_split_points must be strictly increasing");
      break;
    }
  }
  if (splitPoints.some((point) => point === null)) problems.push("range_split_points cannot contain NULL");

  const shardCount = rangeSharding ? splitPoints.length + 1 : (input.initialShardCount ?? existing?.initialShardCount ?? defaults.shardCount);
  if (rangeSharding && input.initialShardCount !== undefined && input.initialShardCount !== shardCount) {
    problems.push(`initial_shard_count ${input.initialShardCount} disagrees with ${splitPoints.length} split points (${shardCount} shards)`);
  }
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > maxShardsPerTable) {
    problems.push(`initial_shard_count ${shardCount} must be between 1 and ${maxShardsPerTable}`);
  }

  const replicationSync = input.replicationSync === common.ReplicationSync.REPLICATION_SYNC_UNSPECIFIED
    ? (existing?.replicationSync ?? common.ReplicationSync.REPLICATION_SYNC_ASYNC)
    : input.replicationSync;
  // Unset (0) with an unset mode keeps what the table had, like every other field.
  const syncReplicas = input.syncReplicas === 0 && input.replicationSync === common.ReplicationSync.REPLICATION_SYNC_UNSPECIFIED ? (existing?.syncReplicas ?? 0) : input.syncReplicas;
  if (syncReplicas < 0) problems.push(`sync_replicas ${syncReplicas} must be ≥ 0`);
  if (replicationSync === common.ReplicationSync.REPLICATION_SYNC_SYNC && syncReplicas < 1) {
    problems.push("replication_sync SYNC needs sync_replicas ≥ 1 (secondaries that must hold a write before it is acknowledged)");
  }
  const colocationGroup = (input.colocationGroup || existing?.colocationGroup || table).toLowerCase();
  if (input.colocationGroup && !identifier.test(colocationGroup)) problems.push(`colocation_group "${input.colocationGroup}" must be a plain identifier`);

  if (schema) {
    const columns = new Set(schema.columns.map((c) => c.name));
    for (const key of shardKeys) {
      if (!columns.has(key)) problems.push(`shard key "${key}" is not a column of ${table} (columns: ${[...columns].join(", ")})`);
    }
  }

  if (existing) {
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same(existing.shardKeys, shardKeys)) problems.push(`table ${table} is sharded by (${existing.shardKeys.join(", ")}); changing shard keys would move every row — create a new table and copy`);
    if (existing.shardFunction !== shardFunction) problems.push(`table ${table} already uses another shard function; it cannot change in place`);
    if (existing.initialShardCount !== shardCount && !rangeSharding) problems.push(`table ${table} already has ${existing.initialShardCount} shards; shard counts change by splitting, not by policy`);
  }

  if (problems.length > 0) {
    throw new MyceliumError("INVALID_ARGUMENT", `invalid policy for ${table || "(no table)"}:\n  ${problems.join("\n  ")}`, { reason: "INVALID_POLICY" });
  }
  return common.TablePolicy.create({
    table,
    replicationFactor,
    validatorOnly: input.validatorOnly,
    minValidatorCopies,
    shardKeys,
    rangeSharding,
    shardFunction,
    customFunction: input.customFunction,
    initialShardCount: shardCount,
    rangeSplitPoints: input.rangeSplitPoints,
    replicationSync,
    syncReplicas,
    colocationGroup,
    version: existing?.version ?? 0,
  });
}
