import { common, router, toValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { insertRowKeys, shardKeyPredicate, splitInsert, SqlError, type Analysis, type SqlValue } from "@mycelium/sql";
import type { TableLayout } from "./table-layout";

/** What the planner needs to know about the cluster: read-only, taken at one moment. */
export interface RoutingSnapshot {
  layout(table: string): TableLayout | undefined;
  nodeAddress(nodeId: string): string | undefined;
}

export interface PlanInput {
  sql: string;
  params: readonly SqlValue[];
  analysis: Analysis;
}

/**
 * Decide where one analysed statement runs. Pure: the same statement and snapshot always give the same
 * plan. Every refusal is a MyceliumError naming the problem and what to do instead.
 */
export function planStatement(input: PlanInput, snapshot: RoutingSnapshot): router.RoutePlan {
  const { analysis } = input;
  switch (analysis.kind) {
    case "ddl":
      return planDdl(input, snapshot);
    case "other":
      throw invalid(
        analysis.transaction
          ? `${analysis.transaction.toUpperCase()} is not a statement here: use Begin/Commit/Rollback (or ExecuteTransaction) to group statements`
          : "only SELECT, INSERT, UPDATE, DELETE and DDL statements can be routed",
        "UNSUPPORTED_STATEMENT",
      );
    default:
      break;
  }
  if (analysis.isWrite && analysis.nondeterministic.length > 0) {
    throw invalid(
      `${analysis.nondeterministic.join(", ")} in a write would give each replica a different value; compute it in the client and pass it as a ? parameter`,
      "NONDETERMINISTIC",
    );
  }
  const layouts = analysis.tables.map((table) => requireTable(snapshot, table));
  if (layouts.length > 1) {
    throw invalid(
      `statements over several tables (${analysis.tables.join(", ")}) are not routed yet: query each table separately`,
      "CROSS_TABLE",
    );
  }
  const layout = layouts[0]!;
  if (analysis.kind === "insert") return planInsert(input, layout, snapshot);
  if (analysis.kind === "update") {
    const changed = (analysis.update?.setColumns ?? []).filter((c) => layout.policy.shardKeys.includes(c));
    if (changed.length > 0) {
      throw invalid(`UPDATE of shard key ${changed.join(", ")} of ${layout.table} would move rows between shards; DELETE the row and INSERT it again`, "SHARD_KEY_UPDATE");
    }
  }
  const predicate = shardKeyPredicate(analysis, layout.table, layout.policy.shardKeys, input.params);
  let shards = layout.shardsFor(predicate);
  const notes: string[] = [];
  if (shards.length === 0) {
    // A contradiction matches no row; one shard still answers, so the result has its columns.
    shards = layout.shards.slice(0, 1);
    notes.push("the WHERE clause matches no shard key; asking one shard for the (empty) result");
  }
  notes.push(describePredicate(predicate.kind, shards.length, layout.shards.length, layout.table));
  const targets = shards.map((shard) => target(shard, snapshot, { sql: input.sql, params: input.params }));
  let merge: router.MergePlan | undefined;
  if (analysis.kind === "select" && targets.length > 1) {
    merge = planMerge(analysis, layout.table);
    notes.push("merge: concatenate the rows of every shard");
  }
  return router.RoutePlan.create({
    kind: statementKind(analysis.kind),
    tables: analysis.tables,
    targets,
    ...(merge ? { merge } : {}),
    isWrite: analysis.isWrite,
    fingerprint: analysis.fingerprint,
    notes,
  });
}

function planDdl(input: PlanInput, snapshot: RoutingSnapshot): router.RoutePlan {
  const ddl = input.analysis.ddl;
  if (!ddl || !ddl.table) throw invalid("this DDL statement names no table Mycelium can place", "UNSUPPORTED_STATEMENT");
  const layout = snapshot.layout(ddl.table);
  if (!layout) {
    throw new MyceliumError(
      "FAILED_PRECONDITION",
      `table ${ddl.table} has no sharding policy; set one first, e.g. \`mycelium policy set ${ddl.table} --shard-keys <column>\``,
      { reason: "NO_POLICY", details: { table: ddl.table } },
    );
  }
  if (ddl.action === "create_table") {
    if (layout.schema && !ddl.ifNotExists) {
      throw new MyceliumError("ALREADY_EXISTS", `table ${ddl.table} already exists`, { reason: "TABLE_EXISTS" });
    }
    const columns = new Set((ddl.columns ?? []).map((c) => c.name));
    const missing = layout.policy.shardKeys.filter((key) => !columns.has(key));
    if (missing.length > 0) {
      throw invalid(`shard key ${missing.join(", ")} of the policy is not a column of ${ddl.table}; add the column or change the policy`, "SHARD_KEY_NOT_COLUMN");
    }
    const primaryKey = ddl.primaryKey ?? [];
    if (primaryKey.length === 0) {
      throw invalid(`table ${ddl.table} needs a PRIMARY KEY: replication identifies rows by it`, "NO_PRIMARY_KEY");
    }
    const outside = layout.policy.shardKeys.filter((key) => !primaryKey.includes(key));
    if (outside.length > 0) {
      throw invalid(
        `the PRIMARY KEY (${primaryKey.join(", ")}) of ${ddl.table} must include the shard key ${outside.join(", ")}: otherwise two shards could hold rows with the same key`,
        "PRIMARY_KEY_WITHOUT_SHARD_KEY",
      );
    }
  } else if (!layout.schema && ddl.action !== "drop_table") {
    throw new MyceliumError("NOT_FOUND", `table ${ddl.table} does not exist; create it first`, { reason: "NO_TABLE" });
  }
  const targets = layout.shards.map((shard) => target(shard, snapshot, { sql: input.sql, params: input.params }));
  return router.RoutePlan.create({
    kind: router.StatementKind.STATEMENT_KIND_DDL,
    tables: [ddl.table],
    targets,
    isWrite: true,
    fingerprint: input.analysis.fingerprint,
    ddlTable: ddl.table,
    notes: [`DDL: every replica of all ${layout.shards.length} shards of ${ddl.table}`],
  });
}

function planInsert(input: PlanInput, layout: TableLayout, snapshot: RoutingSnapshot): router.RoutePlan {
  const insert = input.analysis.insert!;
  if (insert.conflictUpdateColumns.some((c) => layout.policy.shardKeys.includes(c))) {
    throw invalid(`ON CONFLICT DO UPDATE cannot change shard key ${layout.policy.shardKeys.join(", ")}`, "SHARD_KEY_UPDATE");
  }
  const tableColumns = layout.schema?.columns.map((c) => c.name);
  let keys: SqlValue[][];
  try {
    keys = insertRowKeys(input.analysis, layout.policy.shardKeys, input.params, tableColumns);
  } catch (error) {
    if (error instanceof SqlError) throw invalid(error.message, "UNROUTABLE_INSERT");
    throw error;
  }
  const rowsByShard = new Map<string, { shard: common.ShardInfo; rows: number[] }>();
  keys.forEach((key, row) => {
    if (key.some((value) => value === null)) {
      throw invalid(`row ${row + 1} of INSERT INTO ${layout.table} has a NULL shard key (${layout.policy.shardKeys.join(", ")})`, "NULL_SHARD_KEY");
    }
    const shard = layout.shardForKey(key);
    const entry = rowsByShard.get(shard.shardId) ?? { shard, rows: [] };
    entry.rows.push(row);
    rowsByShard.set(shard.shardId, entry);
  });
  const entries = [...rowsByShard.values()];
  const targets = entries.map(({ shard, rows }) => {
    const statement = entries.length === 1
      ? { sql: input.sql, params: input.params }
      : splitInsert(input.sql, rows, { dialect: input.analysis.dialect, params: input.params });
    return target(shard, snapshot, statement);
  });
  return router.RoutePlan.create({
    kind: router.StatementKind.STATEMENT_KIND_INSERT,
    tables: [layout.table],
    targets,
    isWrite: true,
    fingerprint: input.analysis.fingerprint,
    notes: [
      entries.length === 1
        ? `${keys.length} row${keys.length === 1 ? "" : "s"} to shard ${entries[0]!.shard.shardId}`
        : `${keys.length} rows split over ${entries.length} shards`,
    ],
  });
}

/** Scatter reads: only what concatenation answers exactly is allowed until the merger lands. */
function planMerge(analysis: Analysis, table: string): router.MergePlan {
  const select = analysis.select!;
  const unmergeable: string[] = [];
  if (select.hasAggregate) unmergeable.push("aggregates");
  if (select.groupBy.length > 0) unmergeable.push("GROUP BY");
  if (select.distinct) unmergeable.push("DISTINCT");
  if (select.orderBy.length > 0) unmergeable.push("ORDER BY");
  if (select.limit || select.offset) unmergeable.push("LIMIT/OFFSET");
  if (select.hasWindow) unmergeable.push("window functions");
  if (select.hasUnion) unmergeable.push("UNION");
  if (select.hasSubquery) unmergeable.push("subqueries");
  if (unmergeable.length > 0) {
    throw invalid(
      `this query reads every shard of ${table} and uses ${unmergeable.join(", ")}, which cannot be merged across shards yet; restrict it to one shard with the shard key`,
      "UNMERGEABLE",
    );
  }
  return router.MergePlan.create({});
}

function target(shard: common.ShardInfo, snapshot: RoutingSnapshot, statement: { sql: string; params: readonly SqlValue[] }): router.ShardTarget {
  const primaryAddress = snapshot.nodeAddress(shard.primaryNodeId);
  if (!primaryAddress) {
    throw new MyceliumError("UNAVAILABLE", `shard ${shard.shardId} has no reachable primary (node ${shard.primaryNodeId || "none"} is not registered)`, {
      reason: "NO_PRIMARY",
      details: { shardId: shard.shardId },
    });
  }
  return router.ShardTarget.create({
    shard: { shardId: shard.shardId, epoch: shard.epoch },
    primaryNodeId: shard.primaryNodeId,
    primaryAddress,
    replicaNodeIds: shard.replicaNodeIds,
    replicaAddresses: shard.replicaNodeIds.map((id) => snapshot.nodeAddress(id) ?? ""),
    statement: { sql: statement.sql, params: statement.params.map(toValue) },
  });
}

function requireTable(snapshot: RoutingSnapshot, table: string): TableLayout {
  const layout = snapshot.layout(table);
  if (!layout) {
    throw new MyceliumError("NOT_FOUND", `table ${table} has no sharding policy; set one with \`mycelium policy set ${table} --shard-keys <column>\` and create the table`, {
      reason: "NO_POLICY",
      details: { table },
    });
  }
  if (!layout.schema) {
    throw new MyceliumError("NOT_FOUND", `table ${table} does not exist yet (it has a policy); run CREATE TABLE ${table} (...) first`, {
      reason: "NO_TABLE",
      details: { table },
    });
  }
  return layout;
}

function describePredicate(kind: string, touched: number, total: number, table: string): string {
  if (touched === total && total > 1) return `no usable shard-key restriction: all ${total} shards of ${table}`;
  return `${kind === "points" ? "shard key values" : kind === "ranges" ? "shard key ranges" : "shard key"} → ${touched} of ${total} shards of ${table}`;
}

function statementKind(kind: Analysis["kind"]): router.StatementKind {
  switch (kind) {
    case "select":
      return router.StatementKind.STATEMENT_KIND_SELECT;
    case "insert":
      return router.StatementKind.STATEMENT_KIND_INSERT;
    case "update":
      return router.StatementKind.STATEMENT_KIND_UPDATE;
    case "delete":
      return router.StatementKind.STATEMENT_KIND_DELETE;
    case "ddl":
      return router.StatementKind.STATEMENT_KIND_DDL;
    default:
      return router.StatementKind.STATEMENT_KIND_OTHER;
  }
}

function invalid(message: string, reason: string): MyceliumError {
  return new MyceliumError("INVALID_ARGUMENT", message, { reason });
}
