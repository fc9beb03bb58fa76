import { router, toValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import {
  resolveValue,
  rewriteForMerge,
  SqlError,
  type Aggregate,
  type Analysis,
  type ExprValue,
  type MergeCondition,
  type MergeOperand,
  type MergeRewrite,
  type SelectShape,
  type SqlValue,
} from "@mycelium/sql";
import type { TableLayout } from "./table-layout";

export interface MergeInput {
  sql: string;
  params: readonly SqlValue[];
  analysis: Analysis;
  /** Layout of every table of the statement. */
  layoutOf(table: string): TableLayout;
  /** Sharded occurrences every result row has a row of (see colocation.ts). */
  requiredOccurrences: readonly number[];
  shardCount: number;
}

export interface PlannedMerge {
  merge: router.MergePlan;
  /** What every shard runs instead of the statement. */
  statement: { sql: string; params: readonly SqlValue[] };
  notes: string[];
}

const combinable = new Set<Aggregate>(["count", "sum", "min", "max", "avg"]);
const binaryCollations = new Set(["binary", "c", "posix"]);

/**
 * How a SELECT that reads several shards is answered exactly: what each shard runs and how the coordinator
 * merges. Everything that cannot be merged exactly is refused with INVALID_ARGUMENT (reason UNMERGEABLE)
 * naming the construct and why, never approximated.
 */
export function planMerge(input: MergeInput): PlannedMerge {
  const { analysis } = input;
  const shape = analysis.select!;
  const dialect = analysis.dialect;
  const refuse = (what: string, why: string): MyceliumError =>
    new MyceliumError("INVALID_ARGUMENT", `${what} cannot be answered across ${input.shardCount} shards: ${why}; restrict the query to one shard with its shard key, or ${alternative(what)}`, {
      reason: "UNMERGEABLE",
    });
  if (shape.hasUnion) throw refuse("UNION / INTERSECT / EXCEPT", "each shard would combine only its own rows");
  if (shape.hasWindow) throw refuse("a window function", "each shard would compute it over its own rows only");

  const limit = limitValue(shape.limit, "LIMIT", input.params, dialect, refuse);
  const offset = limitValue(shape.offset, "OFFSET", input.params, dialect, refuse);
  const hasLimit = limit !== null && limit >= 0n;
  const offsetRows = offset !== null && offset > 0n ? offset : 0n;

  const grouped = shape.hasAggregate || shape.groupBy.length > 0;
  const localGroups = grouped && shape.groupBy.length > 0 && groupsAreShardLocal(shape, input);
  const combine = grouped && !localGroups;
  const notes: string[] = [];

  if (combine) checkCombinable(shape, refuse);
  checkOrdering(shape, input, combine, refuse);

  // What each shard is asked for: a widened LIMIT when its rows are final, everything when groups combine.
  let shardLimit: bigint | null | undefined;
  if (combine) shardLimit = shape.limit || shape.offset ? null : undefined;
  else if (hasLimit) shardLimit = offsetRows + limit!;
  else shardLimit = shape.offset ? null : undefined;
  const needsRewrite = combine || shape.orderBy.length > 0 || shardLimit !== undefined;
  let rewrite: MergeRewrite | null = null;
  if (needsRewrite) {
    try {
      rewrite = cachedRewrite(input.sql, input.params, analysis, combine, shardLimit === undefined ? undefined : shardLimit === null ? null : toLimitNumber(shardLimit));
    } catch (error) {
      if (error instanceof SqlError && error.code === "UNSUPPORTED") throw refuse("this query", `the rewrite for the shards refused it (${error.message})`);
      throw error;
    }
  }

  const hidden = rewrite?.hidden.length ?? 0;
  const merge = router.MergePlan.create({
    distinct: shape.distinct,
    aggregate: combine,
    hasLimit,
    limit: hasLimit ? toLimitNumber(limit!) : 0,
    offset: toLimitNumber(offsetRows),
    hiddenColumnCount: hidden,
  });
  if (rewrite) {
    merge.orderBy = rewrite.orderBy.map((key) =>
      router.SortKey.create({
        columnIndex: key.index,
        descending: key.descending,
        // SQLite's NULLs are the smallest values, PostgreSQL's the largest.
        nullsFirst: key.nullsFirst ?? (dialect === "sqlite" ? !key.descending : key.descending),
      }),
    );
  }
  if (combine && rewrite) {
    merge.groupBy = [...rewrite.groupBy];
    merge.columns = rewrite.hidden.map((column, i) =>
      router.OutputColumn.create({
        aggregate: aggregateKind(column.aggregate),
        sourceIndex: i,
        countIndex: column.countIndex ?? 0,
      }),
    );
    rewrite.outputs.forEach((output, i) => {
      if (output.kind === "avg") {
        merge.columns.push(router.OutputColumn.create({ name: output.name ?? "", aggregate: router.AggregateKind.AGGREGATE_KIND_AVG, sourceIndex: output.sumIndex, countIndex: output.countIndex }));
      } else {
        if (output.index === null) throw refuse("SELECT * with aggregates", "the width of * is not known when planning");
        merge.columns.push(router.OutputColumn.create({ aggregate: aggregateKind(output.aggregate), sourceIndex: hidden + i }));
      }
    });
    if (rewrite.having) merge.having = havingCondition(rewrite.having, rewrite, input, refuse);
  }

  // Notes for `mycelium explain`.
  if (combine) {
    const keys = shape.groupBy.length > 0 ? `group by (${shape.groupBy.join(", ")})` : "one group";
    const kinds = [...new Set(merge.columns.flatMap((c) => (c.aggregate === router.AggregateKind.AGGREGATE_KIND_NONE ? [] : [router.aggregateKindToJSON(c.aggregate).replace("AGGREGATE_KIND_", "")])))];
    notes.push(`merge: ${keys}, combining ${kinds.length ? kinds.join(", ") : "the group keys"}${kinds.includes("AVG") ? " (AVG as SUM / COUNT)" : ""} from every shard`);
    if (merge.having) notes.push("merge: HAVING evaluated on the combined groups (removed from the shard statements)");
  } else if (localGroups) {
    notes.push("merge: GROUP BY includes the shard key, so every group is complete on one shard; concatenate");
  }
  if (shape.distinct) notes.push("merge: drop duplicate rows");
  if (merge.orderBy.length > 0) {
    const order = shape.orderBy.map((item) => `${item.expression}${item.descending ? " DESC" : ""}`).join(", ");
    notes.push(combine ? `merge: sort the combined rows by ${order}` : `merge: k-way merge of the shards' sorted rows by ${order}`);
  } else if (!combine && !localGroups) {
    notes.push("merge: concatenate the rows of every shard");
  }
  if (hasLimit || offsetRows > 0n) {
    const window = `${offsetRows > 0n ? `OFFSET ${offsetRows} ` : ""}${hasLimit ? `LIMIT ${limit}` : ""}`.trim();
    notes.push(`merge: ${window}${!combine && hasLimit ? ` (each shard asked for at most ${offsetRows + limit!} rows)` : ""}${merge.orderBy.length === 0 ? "; without ORDER BY any matching rows may be returned" : ""}`);
  }
  if (hidden > 0) notes.push(`merge: ${hidden} hidden column${hidden === 1 ? "" : "s"} (${[...new Set(rewrite!.hidden.map((h) => h.role.replace("_", " ")))].join(", ")}) dropped from the answer`);
  return { merge, statement: rewrite ? { sql: rewrite.sql, params: rewrite.params } : { sql: input.sql, params: input.params }, notes };
}

/**
 * The rewrite depends on the text, the dialect and the new LIMIT, not on parameter values (which it only
 * reorders), so the shape is kept and the parameters re-applied: a scatter statement is rewritten once,
 * not on every execution. Bounded (least recently used first out).
 */
const rewriteCacheEntriesMax = 2000;
const rewriteCache = new Map<string, MergeRewrite>();

function cachedRewrite(sql: string, params: readonly SqlValue[], analysis: Analysis, combine: boolean, limit: number | null | undefined): MergeRewrite {
  const key = `${analysis.dialect}${combine ? 1 : 0}${limit === undefined ? "k" : limit === null ? "n" : limit}\u0000${sql}`;
  let shape = rewriteCache.get(key);
  if (shape) {
    rewriteCache.delete(key);
  } else {
    shape = rewriteForMerge(sql, { dialect: analysis.dialect, params, analysis, combineAggregates: combine, ...(limit === undefined ? {} : { limit }) });
    if (rewriteCache.size >= rewriteCacheEntriesMax) rewriteCache.delete(rewriteCache.keys().next().value!);
  }
  rewriteCache.set(key, shape);
  return { ...shape, params: shape.parameterIndexes.map((i) => params[i]!) };
}

function alternative(what: string): string {
  if (what.startsWith("COUNT(DISTINCT")) return "GROUP BY the shard key, or count in the client";
  if (what.startsWith("HAVING")) return "filter the groups in the client";
  return "compute it in the client from a simpler query";
}

/** LIMIT / OFFSET as written, resolved with the parameters; null when absent (or NULL in PostgreSQL, meaning none). */
function limitValue(
  expr: ExprValue | null,
  clause: "LIMIT" | "OFFSET",
  params: readonly SqlValue[],
  dialect: Analysis["dialect"],
  refuse: (what: string, why: string) => MyceliumError,
): bigint | null {
  if (!expr) return null;
  const value = resolveValue(expr, params);
  if (value === undefined) throw refuse(`${clause} ${expr.kind === "expression" ? expr.text : "DEFAULT"}`, "the merger needs its value when planning; pass it as a literal or ? parameter");
  if (value === null && dialect === "postgres") return null;
  let n: bigint | null = null;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) n = BigInt(value.trim());
  if (n === null) throw refuse(`${clause} ${JSON.stringify(typeof value === "bigint" ? String(value) : value)}`, `${clause} must be a whole number`);
  if (n < 0n) {
    if (dialect === "postgres") throw refuse(`${clause} ${n}`, `PostgreSQL does not accept a negative ${clause}`);
    return clause === "LIMIT" ? -1n : 0n; // SQLite: a negative LIMIT means none, a negative OFFSET means 0
  }
  return n;
}

function toLimitNumber(n: bigint): number {
  // Proto int64 fields are numbers here; a limit beyond 2^53 rows is "no limit" in practice.
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/**
 * Groups are complete on one shard when GROUP BY includes the whole shard key of a table every result row
 * has a row of: rows with one key value are on one shard, and (joins being on equal keys) so is the group.
 */
function groupsAreShardLocal(shape: SelectShape, input: MergeInput): boolean {
  const keys = new Set(shape.groupBy);
  return input.requiredOccurrences.some((i) => {
    const occ = input.analysis.occurrences[i]!;
    const layout = input.layoutOf(occ.table);
    return layout.policy.shardKeys.every((key) => {
      // A key with a case-insensitive collation groups values that hash to different shards.
      const collation = layout.schema?.columns.find((c) => c.name === key)?.collation;
      if (collation && !binaryCollations.has(collation)) return false;
      return keys.has(`${occ.alias}.${key}`) || (keys.has(key) && unqualifiedColumnOf(key, input) === occ.table);
    });
  });
}

/** The one table of the statement that has a column of this name, or undefined when none or several do. */
function unqualifiedColumnOf(column: string, input: MergeInput): string | undefined {
  const tables = input.analysis.tables.filter((table) => input.layoutOf(table).schema?.columns.some((c) => c.name === column));
  return tables.length === 1 ? tables[0] : undefined;
}

function checkCombinable(shape: SelectShape, refuse: (what: string, why: string) => MyceliumError): void {
  const groupKeys = new Set(shape.groupBy);
  shape.columns.forEach((column, i) => {
    if (column.isStar) throw refuse("SELECT * with aggregates", "every output column must be a GROUP BY key or COUNT, SUM, MIN, MAX, AVG");
    if (column.aggregate === "count_distinct") {
      throw refuse(column.expression.replace(/^count\(DISTINCT/, "COUNT(DISTINCT"), "a value present on several shards would be counted once per shard, so per-shard counts cannot be added");
    }
    if (column.aggregate === "other") {
      throw refuse(`output column ${column.expression}`, "only COUNT, SUM, MIN, MAX and AVG calls (as whole output columns) can be combined from per-shard results");
    }
    if (!column.aggregate && !groupKeys.has(column.expression) && !shape.groupByOutputIndex.includes(i)) {
      throw refuse(`output column ${column.expression}`, "it is neither aggregated nor a GROUP BY key, so its value would come from an arbitrary row of some shard");
    }
  });
  shape.orderBy.forEach((item) => {
    if (item.outputIndex !== null) return;
    if (item.aggregate && !combinable.has(item.aggregate)) {
      throw refuse(`ORDER BY ${item.expression}`, "only whole COUNT, SUM, MIN, MAX and AVG calls, output columns and GROUP BY keys can be sorted on after combining groups");
    }
    if (!item.aggregate && !groupKeys.has(item.expression)) {
      throw refuse(`ORDER BY ${item.expression}`, "it is neither an output column, an aggregate, nor a GROUP BY key");
    }
  });
  if (shape.having) {
    const opaque = findOpaque(shape.havingCondition);
    if (opaque) throw refuse(`HAVING ${opaque}`, "the merger evaluates only comparisons of COUNT, SUM, MIN, MAX, AVG (and, in SQLite, their output aliases) with literals and ? combined by AND, OR, NOT");
    const other = havingAggregates(shape.havingCondition).find((a) => !combinable.has(a.aggregate));
    if (other) throw refuse(`HAVING ${other.text}`, "only COUNT, SUM, MIN, MAX and AVG can be combined from per-shard results");
  }
}

function findOpaque(condition: SelectShape["havingCondition"]): string | null {
  if (!condition) return "(unknown)";
  switch (condition.kind) {
    case "opaque":
      return condition.text;
    case "and":
    case "or":
      for (const part of condition.parts) {
        const found = findOpaque(part);
        if (found) return found;
      }
      return null;
    case "not":
      return findOpaque(condition.part);
    default:
      return null;
  }
}

function havingAggregates(condition: SelectShape["havingCondition"]): Array<{ aggregate: Aggregate; text: string }> {
  if (!condition) return [];
  switch (condition.kind) {
    case "and":
    case "or":
      return condition.parts.flatMap(havingAggregates);
    case "not":
      return havingAggregates(condition.part);
    case "compare":
      return [condition.left, condition.right].flatMap((o) => (o.kind === "aggregate" ? [o] : []));
    case "between":
      return [condition.operand, condition.low, condition.high].flatMap((o) => (o.kind === "aggregate" ? [o] : []));
    case "is_null":
      return condition.operand.kind === "aggregate" ? [condition.operand] : [];
    default:
      return [];
  }
}

/**
 * The merger compares values with SQLite's BINARY ordering. Refuse merges that compare values the
 * database would order otherwise: a COLLATE other than binary, columns declared with one, and (PostgreSQL)
 * types the backend returns as text (numeric, dates, ...), whose text order is not their order.
 */
function checkOrdering(shape: SelectShape, input: MergeInput, combine: boolean, refuse: (what: string, why: string) => MyceliumError): void {
  const compared: Array<{ expression: string; aggregate?: Aggregate; role: string }> = [];
  for (const item of shape.orderBy) {
    const column = item.outputIndex !== null ? shape.columns[item.outputIndex] : undefined;
    compared.push({ expression: column && !column.isStar ? column.expression : item.expression, ...(item.aggregate ? { aggregate: item.aggregate } : {}), role: "ORDER BY" });
  }
  if (combine) {
    for (const key of shape.groupBy) compared.push({ expression: key, role: "GROUP BY" });
    for (const column of shape.columns) if (column.aggregate === "min" || column.aggregate === "max") compared.push({ expression: column.expression, aggregate: column.aggregate, role: "output column" });
    for (const a of havingAggregates(shape.havingCondition)) compared.push({ expression: a.text, aggregate: a.aggregate, role: "HAVING" });
  }
  if (shape.distinct) {
    for (const column of shape.columns) {
      if (column.isStar) {
        for (const table of input.analysis.tables) for (const c of input.layoutOf(table).schema?.columns ?? []) compared.push({ expression: c.name, role: "DISTINCT" });
      } else compared.push({ expression: column.expression, ...(column.aggregate ? { aggregate: column.aggregate } : {}), role: "DISTINCT" });
    }
  }
  if (compared.length === 0) return;

  const collations = [...input.analysis.fingerprint.matchAll(/\bcollate\s+["`[]?([a-z0-9_]+)/gi)].map((m) => m[1]!.toLowerCase());
  const odd = collations.find((c) => !binaryCollations.has(c));
  if (odd) throw refuse(`COLLATE ${odd}`, "the merger orders text by code point (BINARY / \"C\") only");
  for (const table of input.analysis.tables) {
    for (const column of input.layoutOf(table).schema?.columns ?? []) {
      if (!column.collation || binaryCollations.has(column.collation)) continue;
      const hit = compared.find((c) => mentions(c.expression, column.name));
      if (hit) throw refuse(`${hit.role} ${hit.expression}`, `column ${table}.${column.name} is declared COLLATE ${column.collation}, and the merger orders text by code point only`);
    }
  }
  if (input.analysis.dialect !== "postgres") return;
  for (const c of compared) {
    const problem = postgresOrderProblem(c.expression, c.aggregate, combine, input);
    if (problem) throw refuse(`${c.role} ${c.expression}`, problem);
  }
}

function mentions(expression: string, column: string): boolean {
  return new RegExp(`(^|[^a-z0-9_$"])"?${column.replace(/[^a-z0-9_]/g, "\\$&")}"?($|[^a-z0-9_$("])`).test(expression);
}

/** PostgreSQL types the backend returns as numbers, booleans, bytes, or text ordered by code point (database collation "C"). */
const postgresOrderedTypes = /^(smallint|integer|int|int2|int4|int8|bigint|smallserial|serial|bigserial|serial2|serial4|serial8|real|float4|float8|double precision|float(\(\d+\))?|boolean|bool|bytea|text|varchar(\(\d+\))?|character varying(\(\d+\))?)$/;
/** SUM of these is a number in PostgreSQL (int8 or float8); SUM of bigint or numeric is numeric, returned as text. */
const postgresSumAsNumber = /^(smallint|integer|int|int2|int4|smallserial|serial|serial2|serial4|real|float4|float8|double precision|float(\(\d+\))?)$/;

function postgresOrderProblem(expression: string, aggregate: Aggregate | undefined, combine: boolean, input: MergeInput): string | null {
  if (aggregate === "count") return null;
  // COLLATE "C" / "POSIX" is the code-point order the merger uses.
  let argument = expression.replace(/ COLLATE "?(c|posix|binary)"?$/i, "");
  if (aggregate) {
    const call = /^[a-z_]+\((.*)\)$/.exec(expression);
    if (!call) return "its type is not known when planning";
    argument = call[1]!;
    if (aggregate === "avg") return combine ? null : "PostgreSQL returns AVG as numeric text, which does not sort as a number";
  }
  const type = postgresColumnType(argument, input);
  if (type === undefined) return "its type is not known when planning (sort and compare only on plain columns, COUNT, and SUM/MIN/MAX of plain columns in PostgreSQL)";
  const normalized = type.toLowerCase().replace(/\s+/g, " ").trim();
  if (aggregate === "sum") return postgresSumAsNumber.test(normalized) ? null : `PostgreSQL returns SUM of ${type} as numeric text, which does not sort as a number`;
  return postgresOrderedTypes.test(normalized) ? null : `PostgreSQL returns ${type} values as text, which does not sort like the values`;
}

function postgresColumnType(expression: string, input: MergeInput): string | undefined {
  const ref = /^(?:([a-z_][a-z0-9_$]*)\.)?([a-z_][a-z0-9_$]*)$/.exec(expression);
  if (!ref) return undefined;
  const [, qualifier, column] = ref;
  let table: string | undefined;
  if (qualifier) table = input.analysis.occurrences.find((o) => !o.nested && o.alias === qualifier)?.table;
  else table = unqualifiedColumnOf(column!, input);
  if (!table) return undefined;
  return input.layoutOf(table).schema?.columns.find((c) => c.name === column)?.type;
}

function aggregateKind(aggregate: Aggregate | undefined): router.AggregateKind {
  switch (aggregate) {
    case undefined:
      return router.AggregateKind.AGGREGATE_KIND_NONE;
    case "count":
      return router.AggregateKind.AGGREGATE_KIND_COUNT;
    case "sum":
      return router.AggregateKind.AGGREGATE_KIND_SUM;
    case "min":
      return router.AggregateKind.AGGREGATE_KIND_MIN;
    case "max":
      return router.AggregateKind.AGGREGATE_KIND_MAX;
    case "avg":
      return router.AggregateKind.AGGREGATE_KIND_AVG;
    default:
      throw new Error(`aggregate ${aggregate} reached the merge plan`);
  }
}

const comparisonOperators: Record<string, router.ComparisonOperator> = {
  "=": router.ComparisonOperator.COMPARISON_OPERATOR_EQUAL,
  "<>": router.ComparisonOperator.COMPARISON_OPERATOR_NOT_EQUAL,
  "<": router.ComparisonOperator.COMPARISON_OPERATOR_LESS,
  "<=": router.ComparisonOperator.COMPARISON_OPERATOR_LESS_OR_EQUAL,
  ">": router.ComparisonOperator.COMPARISON_OPERATOR_GREATER,
  ">=": router.ComparisonOperator.COMPARISON_OPERATOR_GREATER_OR_EQUAL,
};

/**
 * The HAVING condition for the merger, with literals and parameters resolved. SQLite compares aggregate
 * results without affinity, so values stay as written; PostgreSQL converts an untyped literal or parameter
 * to the aggregate's type, so text compared with COUNT / SUM / AVG becomes a number here.
 */
function havingCondition(condition: MergeCondition, rewrite: MergeRewrite, input: MergeInput, refuse: (what: string, why: string) => MyceliumError): router.MergeCondition {
  const numericColumns = new Set<number>();
  rewrite.hidden.forEach((column, i) => {
    if (column.aggregate === "count" || column.aggregate === "sum" || column.aggregate === "avg") numericColumns.add(i);
  });
  rewrite.outputs.forEach((output) => {
    if (output.kind === "avg") numericColumns.add(output.sumIndex);
    else if (output.index !== null && (output.aggregate === "count" || output.aggregate === "sum")) numericColumns.add(output.index);
  });
  const shape = input.analysis.select!;
  const value = (operand: MergeOperand, other: MergeOperand): router.MergeOperand => {
    if (operand.kind === "column") return router.MergeOperand.create({ kind: { $case: "columnIndex", value: operand.index } });
    let v = operand.kind === "value" ? operand.value : resolveValue(operand, input.params)!;
    if (input.analysis.dialect === "postgres" && typeof v === "string" && other.kind === "column" && numericColumns.has(other.index)) {
      const text = v.trim();
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw refuse(`HAVING ... '${v}'`, "PostgreSQL cannot compare a number with that text");
      v = /^[+-]?\d+$/.test(text) && !Number.isSafeInteger(Number(text)) ? BigInt(text) : Number(text);
    }
    return router.MergeOperand.create({ kind: { $case: "value", value: toValue(v) } });
  };
  const compare = (op: string, left: MergeOperand, right: MergeOperand): router.MergeCondition =>
    router.MergeCondition.create({
      kind: { $case: "compare", value: router.MergeComparison.create({ operator: comparisonOperators[op]!, left: value(left, right), right: value(right, left) }) },
    });
  const convert = (c: MergeCondition): router.MergeCondition => {
    switch (c.kind) {
      case "and":
        return router.MergeCondition.create({ kind: { $case: "all", value: { conditions: c.parts.map(convert) } } });
      case "or":
        return router.MergeCondition.create({ kind: { $case: "any", value: { conditions: c.parts.map(convert) } } });
      case "not":
        return router.MergeCondition.create({ kind: { $case: "not", value: convert(c.part) } });
      case "compare":
        return compare(c.op, c.left, c.right);
      case "between": {
        // x BETWEEN a AND b is x >= a AND x <= b, three-valued logic included.
        const both = router.MergeCondition.create({ kind: { $case: "all", value: { conditions: [compare(">=", c.operand, c.low), compare("<=", c.operand, c.high)] } } });
        return c.negated ? router.MergeCondition.create({ kind: { $case: "not", value: both } }) : both;
      }
      case "is_null":
        return router.MergeCondition.create({ kind: { $case: "nullTest", value: { operand: value(c.operand, c.operand), negated: c.negated } } });
    }
  };
  checkAliasOperands(shape, input, refuse);
  return convert(condition);
}

/** SQLite reads a HAVING name as a column of a table before an output alias: refuse the ambiguous case. */
function checkAliasOperands(shape: SelectShape, input: MergeInput, refuse: (what: string, why: string) => MyceliumError): void {
  const names: string[] = [];
  const visit = (c: SelectShape["havingCondition"]): void => {
    if (!c) return;
    if (c.kind === "and" || c.kind === "or") c.parts.forEach(visit);
    else if (c.kind === "not") visit(c.part);
    else if (c.kind === "compare") [c.left, c.right].forEach((o) => o.kind === "output" && names.push(o.name));
    else if (c.kind === "between") [c.operand, c.low, c.high].forEach((o) => o.kind === "output" && names.push(o.name));
    else if (c.kind === "is_null" && c.operand.kind === "output") names.push(c.operand.name);
  };
  visit(shape.havingCondition);
  for (const name of names) {
    const table = input.analysis.tables.find((t) => input.layoutOf(t).schema?.columns.some((c) => c.name === name));
    if (table) throw refuse(`HAVING ${name}`, `${name} is both an output alias and a column of ${table}; name the aggregate instead of the alias`);
  }
}
