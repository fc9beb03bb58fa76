import { common, toValue } from "@mycelium/proto";
import { analyze, type SqlValue } from "@mycelium/sql";
import type { RoutingSnapshot } from "../../src/core/route-planner";
import { initialKeyRanges, TableLayout, type TableSchema } from "../../src/core/table-layout";

/**
 * A fixed cluster for routing tests: five nodes, and tables covering every routing case. Call after
 * `loadSqlParser()` (schemas are read from their CREATE TABLE).
 *
 * - users, orders: hash-sharded on an INTEGER key, 4 shards, colocation group "accounts" (aligned)
 * - invoices: group "accounts" too, but its shard 2 is on other nodes (misaligned)
 * - products: group "accounts" with a TEXT key (type mismatch)
 * - sessions: like users, but its own group
 * - events: range-sharded on ts at 100 / 200 / 300
 * - tags: hash-sharded on (tenant, tag), 3 shards
 * - countries: reference table on every node; currencies: reference table missing from n5
 * - drafts: a policy without a table
 */
export const fixtureTables: Array<{
  table: string;
  ddl?: string;
  policy: Partial<common.TablePolicy>;
  shards: number;
  placement: string[][];
  epoch: number;
}> = [
  {
    table: "users",
    ddl: "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nick TEXT COLLATE NOCASE, age INTEGER, country TEXT, score REAL, balance NUMERIC(12, 2), created_at TIMESTAMP, big BIGINT)",
    policy: { shardKeys: ["id"], colocationGroup: "accounts" },
    shards: 4,
    placement: [["n1", "n2", "n3"], ["n2", "n3", "n4"], ["n3", "n4", "n5"], ["n4", "n5", "n1"]],
    epoch: 3,
  },
  {
    table: "orders",
    ddl: "CREATE TABLE orders (user_id INTEGER NOT NULL, id INTEGER NOT NULL, total INTEGER, status TEXT, country TEXT, PRIMARY KEY (user_id, id))",
    policy: { shardKeys: ["user_id"], colocationGroup: "accounts" },
    shards: 4,
    placement: [["n1", "n2", "n3"], ["n2", "n3", "n4"], ["n3", "n4", "n5"], ["n4", "n5", "n1"]],
    epoch: 5,
  },
  {
    table: "invoices",
    ddl: "CREATE TABLE invoices (user_id INTEGER NOT NULL, id INTEGER NOT NULL, amount INTEGER, PRIMARY KEY (user_id, id))",
    policy: { shardKeys: ["user_id"], colocationGroup: "accounts" },
    shards: 4,
    placement: [["n1", "n2", "n3"], ["n2", "n3", "n4"], ["n5", "n1", "n2"], ["n4", "n5", "n1"]],
    epoch: 2,
  },
  {
    table: "products",
    ddl: "CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT, price INTEGER)",
    policy: { shardKeys: ["sku"], colocationGroup: "accounts" },
    shards: 4,
    placement: [["n1", "n2", "n3"], ["n2", "n3", "n4"], ["n3", "n4", "n5"], ["n4", "n5", "n1"]],
    epoch: 1,
  },
  {
    table: "sessions",
    ddl: "CREATE TABLE sessions (user_id INTEGER NOT NULL, token TEXT NOT NULL, PRIMARY KEY (user_id, token))",
    policy: { shardKeys: ["user_id"] },
    shards: 4,
    placement: [["n5", "n1", "n2"], ["n1", "n2", "n3"], ["n2", "n3", "n4"], ["n3", "n4", "n5"]],
    epoch: 1,
  },
  {
    table: "events",
    ddl: "CREATE TABLE events (ts INTEGER PRIMARY KEY, kind TEXT, value INTEGER)",
    policy: { shardKeys: ["ts"], shardFunction: common.ShardFunction.SHARD_FUNCTION_RANGE, rangeSharding: true, rangeSplitPoints: [100, 200, 300].map((v) => toValue(v)) },
    shards: 4,
    placement: [["n1", "n2"], ["n2", "n3"], ["n3", "n4"], ["n4", "n5"]],
    epoch: 7,
  },
  {
    table: "tags",
    ddl: "CREATE TABLE tags (tenant TEXT, tag TEXT, hits INTEGER, PRIMARY KEY (tenant, tag))",
    policy: { shardKeys: ["tenant", "tag"] },
    shards: 3,
    placement: [["n1", "n3"], ["n2", "n4"], ["n3", "n5"]],
    epoch: 1,
  },
  {
    table: "countries",
    ddl: "CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT, region TEXT)",
    policy: { shardKeys: ["code"], replicationFactor: 1 },
    shards: 1,
    placement: [["n1", "n2", "n3", "n4", "n5"]],
    epoch: 4,
  },
  {
    table: "currencies",
    ddl: "CREATE TABLE currencies (code TEXT PRIMARY KEY, rate REAL)",
    policy: { shardKeys: ["code"], replicationFactor: 1 },
    shards: 1,
    placement: [["n1", "n2", "n3", "n4"]],
    epoch: 1,
  },
  {
    table: "drafts",
    policy: { shardKeys: ["id"] },
    shards: 2,
    placement: [["n1"], ["n2"]],
    epoch: 1,
  },
];

export const fixtureNodes = ["n1", "n2", "n3", "n4", "n5"];

export function fixtureSnapshot(): RoutingSnapshot & { layouts: Map<string, TableLayout> } {
  const layouts = new Map<string, TableLayout>();
  for (const spec of fixtureTables) layouts.set(spec.table, fixtureLayout(spec));
  return {
    layouts,
    layout: (table) => layouts.get(table),
    nodeAddress: (nodeId) => (fixtureNodes.includes(nodeId) ? `10.0.0.${nodeId.slice(1)}:7100` : undefined),
  };
}

export function fixtureLayout(spec: (typeof fixtureTables)[number]): TableLayout {
  const policy = common.TablePolicy.create({
    table: spec.table,
    replicationFactor: 0.6,
    minValidatorCopies: 1,
    shardFunction: common.ShardFunction.SHARD_FUNCTION_HASH,
    initialShardCount: spec.shards,
    colocationGroup: spec.table,
    ...spec.policy,
  });
  const shards = initialKeyRanges(policy, spec.shards).map((keyRange, index) =>
    common.ShardInfo.create({
      shardId: `${spec.table}-${String(index).padStart(4, "0")}`,
      table: spec.table,
      index,
      keyRange,
      epoch: spec.epoch,
      primaryNodeId: spec.placement[index]![0]!,
      replicaNodeIds: spec.placement[index]!,
      state: common.ShardState.SHARD_STATE_ACTIVE,
    }),
  );
  return new TableLayout(policy, shards, spec.ddl ? schemaOf(spec.table, spec.ddl) : null);
}

function schemaOf(table: string, ddl: string): TableSchema {
  const info = analyze(ddl, { dialect: "sqlite" }).ddl!;
  return { table, columns: [...(info.columns ?? [])], primaryKey: [...(info.primaryKey ?? [])], ddl: [ddl], version: 1 };
}

/** The shard (index) of a users / orders key, for tests that need rows on known shards. */
export function shardIndexOf(snapshot: ReturnType<typeof fixtureSnapshot>, table: string, key: SqlValue[]): number {
  const layout = snapshot.layouts.get(table)!;
  return layout.shards.indexOf(layout.shardForKey(key));
}
