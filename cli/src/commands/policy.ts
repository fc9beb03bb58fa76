import type { Command } from "commander";
import { common, fromValue, router, toValue } from "@mycelium/proto";
import { renderTable, toJson } from "../output/format";
import { connect, withConnectionFlags } from "./connect";
import { printError } from "./sql";

interface SetOptions {
  shardKeys: string;
  replicationFactor?: string;
  validatorOnly?: boolean;
  minValidatorCopies?: string;
  rangeSharding?: boolean;
  splitPoints?: string;
  shards?: string;
  shardFunction?: string;
  customFunction?: string;
  syncReplicas?: string;
  colocationGroup?: string;
  json?: boolean;
}

export function registerPolicy(program: Command): void {
  const policy = program.command("policy").description("table sharding policies (changes need the admin certificate)");

  withConnectionFlags(
    policy
      .command("set <table>")
      .description("create or change a table's policy")
      .requiredOption("--shard-keys <columns>", "comma-separated shard key columns")
      .option("--replication-factor <f>", "fraction of eligible nodes holding each shard, in (0,1]")
      .option("--validator-only", "place the table on validators only")
      .option("--min-validator-copies <n>", "validators that must hold each shard")
      .option("--range-sharding", "shard by key ranges (with --split-points)")
      .option("--split-points <values>", "comma-separated split points for range sharding")
      .option("--shards <n>", "initial shard count (hash sharding)")
      .option("--shard-function <name>", "hash (default), range, or custom")
      .option("--custom-function <name>", "registered custom shard function")
      .option("--sync-replicas <n>", "acknowledge writes only when this many secondaries hold them")
      .option("--colocation-group <name>", "share shards with the other tables of this group")
      .option("--json", "print the result as JSON"),
  ).action(async (table: string, options: SetOptions) => {
    await withAdmin(options, async (client) => {
      const shardFunction = parseShardFunction(options.shardFunction, options.rangeSharding);
      const syncReplicas = options.syncReplicas ? integer("--sync-replicas", options.syncReplicas) : 0;
      const response = await client.router.setPolicy(
        router.SetPolicyRequest.create({
          policy: common.TablePolicy.create({
            table,
            shardKeys: options.shardKeys.split(",").map((s) => s.trim()).filter(Boolean),
            ...(options.replicationFactor !== undefined ? { replicationFactor: number("--replication-factor", options.replicationFactor) } : {}),
            validatorOnly: Boolean(options.validatorOnly),
            ...(options.minValidatorCopies !== undefined ? { minValidatorCopies: integer("--min-validator-copies", options.minValidatorCopies) } : {}),
            rangeSharding: Boolean(options.rangeSharding),
            shardFunction,
            customFunction: options.customFunction ?? "",
            ...(options.shards !== undefined ? { initialShardCount: integer("--shards", options.shards) } : {}),
            rangeSplitPoints: (options.splitPoints ?? "").split(",").map((s) => s.trim()).filter(Boolean).map(parseValue).map(toValue),
            replicationSync: syncReplicas > 0 ? common.ReplicationSync.REPLICATION_SYNC_SYNC : common.ReplicationSync.REPLICATION_SYNC_UNSPECIFIED,
            syncReplicas,
            colocationGroup: options.colocationGroup ?? "",
          }),
        }),
      );
      if (options.json) {
        process.stdout.write(toJson({ policy: policyJson(response.policy!), shards: response.shards.map(shardJson) }) + "\n");
      } else {
        process.stdout.write(describePolicy(response.policy!) + "\n");
        process.stdout.write(`${response.shards.length} shards\n`);
      }
    });
  });

  withConnectionFlags(policy.command("get <table>").description("show a table's policy").option("--json", "print JSON")).action(
    async (table: string, options: { json?: boolean }) => {
      await withAdmin(options, async (client) => {
        const response = await client.router.getPolicy(router.GetPolicyRequest.create({ table }), { idempotent: true });
        process.stdout.write((options.json ? toJson(policyJson(response.policy!)) : describePolicy(response.policy!)) + "\n");
      });
    },
  );

  withConnectionFlags(policy.command("list").description("list every policy").option("--json", "print JSON")).action(async (options: { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const response = await client.router.listPolicies(router.ListPoliciesRequest.create({}), { idempotent: true });
      if (options.json) {
        process.stdout.write(toJson(response.policies.map(policyJson)) + "\n");
        return;
      }
      const rows = response.policies.map((p) => [p.table, p.shardKeys.join(","), shardFunctionName(p.shardFunction), p.initialShardCount ?? null, p.replicationFactor ?? null, p.minValidatorCopies ?? null, p.validatorOnly ? "yes" : "no", p.version]);
      process.stdout.write(renderTable(["table", "shard_keys", "function", "shards", "replication_factor", "min_validator_copies", "validator_only", "version"], rows) + "\n");
    });
  });

  withConnectionFlags(policy.command("delete <table>").description("delete the policy of a table that does not exist (anymore)")).action(async (table: string, options: object) => {
    await withAdmin(options, async (client) => {
      await client.router.deletePolicy(router.DeletePolicyRequest.create({ table }));
      process.stdout.write(`deleted policy of ${table}\n`);
    });
  });
}

export async function withAdmin(options: object, work: (client: ReturnType<typeof connect>) => Promise<void>): Promise<void> {
  const client = connect(options, "admin");
  try {
    await work(client);
  } catch (error) {
    printError(error);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

function parseShardFunction(name: string | undefined, range: boolean | undefined): common.ShardFunction {
  switch ((name ?? "").toLowerCase()) {
    case "":
      return range ? common.ShardFunction.SHARD_FUNCTION_RANGE : common.ShardFunction.SHARD_FUNCTION_UNSPECIFIED;
    case "hash":
      return common.ShardFunction.SHARD_FUNCTION_HASH;
    case "range":
      return common.ShardFunction.SHARD_FUNCTION_RANGE;
    case "custom":
      return common.ShardFunction.SHARD_FUNCTION_CUSTOM;
    default:
      throw new Error(`--shard-function must be hash, range or custom, not ${name}`);
  }
}

function shardFunctionName(fn: common.ShardFunction): string {
  return fn === common.ShardFunction.SHARD_FUNCTION_RANGE ? "range" : fn === common.ShardFunction.SHARD_FUNCTION_CUSTOM ? "custom" : "hash";
}

function number(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${flag} expects a number, got "${text}"`);
  return value;
}

function integer(flag: string, text: string): number {
  const value = number(flag, text);
  if (!Number.isInteger(value)) throw new Error(`${flag} expects a whole number, got "${text}"`);
  return value;
}

function parseValue(text: string): number | string {
  return /^[+-]?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
}

export function policyJson(p: common.TablePolicy) {
  return {
    table: p.table,
    shardKeys: p.shardKeys,
    shardFunction: shardFunctionName(p.shardFunction),
    customFunction: p.customFunction || undefined,
    shards: p.initialShardCount,
    replicationFactor: p.replicationFactor,
    validatorOnly: p.validatorOnly,
    minValidatorCopies: p.minValidatorCopies,
    rangeSharding: p.rangeSharding,
    splitPoints: p.rangeSplitPoints.map(fromValue),
    syncReplicas: p.syncReplicas,
    colocationGroup: p.colocationGroup,
    version: p.version,
  };
}

export function shardJson(s: common.ShardInfo) {
  return {
    shardId: s.shardId,
    table: s.table,
    epoch: s.epoch,
    primary: s.primaryNodeId,
    replicas: s.replicaNodeIds,
    state: common.shardStateToJSON(s.state),
    hashRange: s.keyRange && !s.keyRange.rangeStart && !s.keyRange.rangeStartUnbounded ? [s.keyRange.hashStart, s.keyRange.hashEnd] : undefined,
  };
}

function describePolicy(p: common.TablePolicy): string {
  const json = policyJson(p);
  return Object.entries(json)
    .filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k.padEnd(20)} ${Array.isArray(v) ? v.join(", ") : String(v)}`)
    .join("\n");
}
