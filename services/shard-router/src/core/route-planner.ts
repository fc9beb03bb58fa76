import { common, router, toValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { insertRowKeys, shardKeyPredicate, splitInsertRows, SqlError, type Analysis, type SqlValue } from "@mycelium/sql";
import { checkColocated, isReferenceTable, keyJoinProblem, occurrencePositions, shardedOccurrences } from "./colocation";
import { planMerge } from "./merge-planner";
import { schemaVersionError } from "./schema-versions";
import type { TableLayout } from "./table-layout";

/** What the planner needs to know about the cluster: read-only, taken at one moment. */
export interface RoutingSnapshot {
  layout(table: string): TableLayout | undefined;
  nodeAddress(nodeId: string): string | undefined;
  /**
   * The schema version of a table on one copy of a shard (0 when never recorded). Without it (test
   * fixtures) copies are not checked; with it, statements only go to copies whose version equals
   * their table's.
   */
  replicaSchemaVersion?(shardId: string, nodeId: string): number;
}

export interface PlanInput {
  sql: string;
  params: readonly SqlValue[];
  analysis: Analysis;
}

/**
 * Decide where one analysed statement runs, in the statement's dialect. Pure: the same statement and
 * snapshot always give the same plan. Every refusal is a MyceliumError naming the problem and what to do
 * instead.
 *
 * Several tables: sharded tables must be co-located (one colocation group whose shard i is on the same
 * nodes for every table) and joined on their whole shard keys; reference tables (one shard on every
 * eligible node) may be read next to anything. Such a statement runs shard by shard: target i carries the
 * shards at position i of the other tables (`colocated_shards`) and the reference shards, which the
 * node-agent makes visible to it.
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
  if (analysis.tables.length === 0) {
    throw invalid("the statement reads no table, so no shard holds its answer; evaluate it in the client", "NO_TABLE");
  }
  const layouts = new Map(analysis.tables.map((table) => [table, requireTable(snapshot, table)]));
  const layoutOf = (table: string): TableLayout => {
    const layout = layouts.get(table);
    if (!layout) throw new Error(`table ${table} is used by the statement but was not looked up`);
    return layout;
  };
  if (analysis.kind === "insert") {
    const table = analysis.insert!.table;
    const others = analysis.tables.filter((t) => t !== table);
    if (others.length > 0) {
      throw invalid(`INSERT INTO ${table} reads ${others.join(", ")}, which may live on other nodes than the row's shard; read it first and insert the values`, "CROSS_TABLE_WRITE");
    }
    return planInsert(input, layoutOf(table), snapshot);
  }
  const writeTarget = analysis.update?.table ?? analysis.delete?.table;
  if (analysis.kind === "update") {
    const layout = layoutOf(writeTarget!);
    const changed = (analysis.update?.setColumns ?? []).filter((c) => layout.policy.shardKeys.includes(c));
    if (changed.length > 0) {
      throw invalid(`UPDATE of shard key ${changed.join(", ")} of ${layout.table} would move rows between shards; DELETE the row and INSERT it again`, "SHARD_KEY_UPDATE");
    }
  }
  const reference = analysis.tables.filter((t) => isReferenceTable(layoutOf(t)));
  const sharded = analysis.tables.filter((t) => !isReferenceTable(layoutOf(t)));
  if (writeTarget) {
    const readSharded = sharded.filter((t) => t !== writeTarget);
    if (isReferenceTable(layoutOf(writeTarget)) && readSharded.length > 0) {
      throw invalid(`a write to reference table ${writeTarget} cannot read sharded table ${readSharded.join(", ")}: no node holds all of it; read it first and pass the values`, "CROSS_TABLE_WRITE");
    }
    const readReference = reference.filter((t) => t !== writeTarget);
    if (readReference.length > 0) {
      throw invalid(
        `a write to ${writeTarget} that reads reference table ${readReference.join(", ")} would read each node's copy, which may lag behind its primary, and replicas could diverge; read it first and pass the values`,
        "REFERENCE_TABLE_IN_WRITE",
      );
    }
  }
  checkColocated(sharded.map(layoutOf));

  // Reads of reference tables only run where the smallest of them is, so every other one is there too.
  const driving = layoutOf(
    writeTarget ?? sharded[0] ?? [...reference].sort((a, b) => layoutOf(a).shards[0]!.replicaNodeIds.length - layoutOf(b).shards[0]!.replicaNodeIds.length)[0]!,
  );
  const notes: string[] = [];
  let positions: number[];
  if (sharded.length === 0) {
    positions = [0];
    notes.push(`reference table${analysis.tables.length > 1 ? "s" : ""} ${analysis.tables.join(", ")}: one shard, read on its primary`);
  } else {
    positions = shardPositions(input, sharded, layoutOf, notes);
  }
  if (positions.length === 0) {
    // A contradiction matches no row; one shard still answers, so the result has its columns.
    positions = [0];
    notes.push("the WHERE clause matches no shard key; asking one shard for the (empty) result");
  }
  const colocated = sharded.filter((t) => t !== driving.table).map(layoutOf);
  const referenced = reference.filter((t) => t !== driving.table).map(layoutOf);
  if (colocated.length > 0) {
    notes.push(`co-located tables ${[driving.table, ...colocated.map((l) => l.table)].join(", ")} (group ${driving.policy.colocationGroup || driving.table}): shard i of each is on the same nodes, so each target reads its partners there`);
  }
  if (referenced.length > 0) {
    notes.push(`reference table${referenced.length > 1 ? "s" : ""} ${referenced.map((l) => l.table).join(", ")} read from the copy on each target's node`);
  }

  let statement: { sql: string; params: readonly SqlValue[] } = { sql: input.sql, params: input.params };
  let merge: router.MergePlan | undefined;
  if (analysis.kind === "select" && positions.length > 1) {
    const planned = planMerge({
      sql: input.sql,
      params: input.params,
      analysis,
      layoutOf,
      requiredOccurrences: shardedOccurrences(analysis, (t) => sharded.includes(t)).required,
      shardCount: positions.length,
    });
    merge = planned.merge;
    statement = planned.statement;
    notes.push(...planned.notes);
  }
  const targets = positions.map((position) => {
    const shard = driving.shards[position]!;
    requireSchemaVersion(snapshot, driving, shard, shard.primaryNodeId);
    for (const layout of colocated) requireSchemaVersion(snapshot, layout, layout.shards[position]!, shard.primaryNodeId);
    for (const layout of referenced) requireSchemaVersion(snapshot, layout, layout.shards[0]!, shard.primaryNodeId);
    const built = target(shard, snapshot, statement);
    built.colocatedShards = colocated.map((layout) => shardRef(layout.shards[position]!));
    built.referenceShards = referenced.map((layout) => {
      const copy = layout.shards[0]!;
      const missing = shard.replicaNodeIds.filter((node) => !copy.replicaNodeIds.includes(node));
      if (missing.length > 0) {
        throw new MyceliumError(
          "FAILED_PRECONDITION",
          `reference table ${layout.table} has no copy on node ${missing.join(", ")}, which holds shard ${shard.shardId}; wait until it is placed there (it belongs on every eligible node)`,
          { reason: "REFERENCE_NOT_LOCAL", details: { table: layout.table, shardId: shard.shardId } },
        );
      }
      return shardRef(copy);
    });
    return built;
  });
  return router.RoutePlan.create({
    kind: statementKind(analysis.kind),
    tables: analysis.tables,
    targets,
    ...(merge ? { merge } : {}),
    isWrite: analysis.isWrite,
    fingerprint: analysis.fingerprint,
    notes,
    referenceTables: referenced.map((layout) => layout.table),
    colocationGroup: colocated.length > 0 ? driving.policy.colocationGroup || driving.table : "",
    ...tableAccess(analysis),
  });
}

/**
 * Which tables a statement writes and reads, for the coordinator's privilege check: a SELECT reads every
 * table; a write reads the tables it names besides its target, and its target too when it reads it again
 * (a non-target occurrence, such as a subquery on it, or RETURNING).
 */
export function tableAccess(analysis: Analysis): { writeTable: string; readTables: string[]; upsert: boolean } {
  const writeTable = analysis.insert?.table ?? analysis.update?.table ?? analysis.delete?.table ?? "";
  if (!writeTable) return { writeTable: "", readTables: [...analysis.tables], upsert: false };
  const returning = analysis.insert?.returning || analysis.update?.returning || analysis.delete?.returning || false;
  const readTables = analysis.tables.filter(
    (table) => table !== writeTable || returning || analysis.occurrences.some((occurrence) => occurrence.table === table && !occurrence.target),
  );
  const action = analysis.insert?.conflictAction;
  return { writeTable, readTables, upsert: action === "update" || action === "replace" };
}

/** Refuses a copy whose schema version of the table differs from the table's (see schema-versions.ts). */
function requireSchemaVersion(snapshot: RoutingSnapshot, layout: TableLayout, shard: common.ShardInfo, nodeId: string): void {
  if (!snapshot.replicaSchemaVersion || !layout.schema || !nodeId) return;
  const error = schemaVersionError(layout.table, shard.shardId, nodeId, snapshot.replicaSchemaVersion(shard.shardId, nodeId), layout.schema.version);
  if (error) throw error;
}

/**
 * The positions in the co-location group's shard list the statement must run on. When every sharded
 * table's rows are on one position, that one; otherwise the sharded occurrences must be joined on their
 * shard keys, and the positions are those every required occurrence may touch (their intersection).
 */
function shardPositions(input: PlanInput, sharded: readonly string[], layoutOf: (table: string) => TableLayout, notes: string[]): number[] {
  const { analysis, params } = input;
  const union = new Set<number>();
  for (const table of sharded) {
    const layout = layoutOf(table);
    const predicate = shardKeyPredicate(analysis, table, layout.policy.shardKeys, params);
    const ids = new Set(layout.shardsFor(predicate).map((shard) => shard.shardId));
    layout.shards.forEach((shard, i) => ids.has(shard.shardId) && union.add(i));
    if (sharded.length === 1) notes.push(describePredicate(predicate.kind, ids.size, layout.shards.length, table));
  }
  if (union.size <= 1) return [...union];
  const occurrences = shardedOccurrences(analysis, (t) => sharded.includes(t));
  const problem = keyJoinProblem(analysis, occurrences.all, layoutOf);
  if (problem && analysis.select?.hasUnion) {
    throw invalid(
      `UNION / INTERSECT / EXCEPT cannot be answered across ${union.size} shards: each shard would combine only its own rows; restrict every arm to one shard with its shard key, or run the arms separately`,
      "UNMERGEABLE",
    );
  }
  if (problem) {
    const nested = problem.startsWith("a subquery");
    throw invalid(
      `this statement needs ${union.size} shards, but ${problem}; ${nested ? "restrict every table to one shard with its shard key, or run the subquery first" : "join co-located tables on equal shard keys, or query the tables separately"}`,
      nested ? "SUBQUERY_ACROSS_SHARDS" : "JOIN_NOT_ON_SHARD_KEY",
    );
  }
  let positions: Set<number>;
  if (occurrences.required.length > 0) {
    positions = new Set(union);
    for (const i of occurrences.required) {
      const touched = occurrencePositions(analysis, i, layoutOf(analysis.occurrences[i]!.table), params);
      for (const p of positions) if (!touched.has(p)) positions.delete(p);
    }
  } else {
    positions = union;
  }
  if (sharded.length > 1 || occurrences.all.length > 1) {
    const total = layoutOf(sharded[0]!).shards.length;
    notes.push(`shard keys joined across ${occurrences.all.length} table occurrences → ${positions.size} of ${total} shard positions`);
  }
  return [...positions].sort((a, b) => a - b);
}

function shardRef(shard: common.ShardInfo): common.ShardRef {
  return common.ShardRef.create({ shardId: shard.shardId, epoch: shard.epoch });
}

export function planDdl(input: PlanInput, snapshot: RoutingSnapshot): router.RoutePlan {
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
  const parts = entries.length === 1
    ? [{ sql: input.sql, params: input.params }]
    : splitInsertRows(input.sql, entries.map((entry) => entry.rows), { dialect: input.analysis.dialect, params: input.params, analysis: input.analysis });
  for (const { shard } of entries) requireSchemaVersion(snapshot, layout, shard, shard.primaryNodeId);
  const targets = entries.map(({ shard }, i) => target(shard, snapshot, parts[i]!));
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
    ...tableAccess(input.analysis),
  });
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
    syncReplicas: syncReplicasOf(snapshot.layout(shard.table)?.policy),
  });
}

function syncReplicasOf(policy: common.TablePolicy | undefined): number {
  return policy?.replicationSync === common.ReplicationSync.REPLICATION_SYNC_SYNC ? policy.syncReplicas : 0;
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
