import * as fs from "node:fs";
import { fromValue, router, type common } from "@mycelium/proto";
import { isMyceliumError } from "@mycelium/rpc";
import { analyze, type Dialect, type SqlValue } from "@mycelium/sql";
import { planStatement, type RoutingSnapshot } from "../../src/core/route-planner";

/**
 * Golden routing files (Vitess style). A file is a list of cases:
 *
 *     === name of the case
 *     dialects: sqlite            (optional: sqlite, postgres or both; default both)
 *     params: [1, "x"]            (optional, JSON; {"bigint": "..."} for a bigint, {"blob": "hex"} for bytes)
 *     sql: SELECT ...             (continues on following lines until a --- line)
 *     --- both                    (expected outcome for both dialects, or one block per dialect)
 *     kind: select ...
 *
 * `UPDATE_GOLDEN=1` rewrites the expected blocks from what the planner does now (review the diff!);
 * `GOLDEN_FILTER=text` runs only the cases whose name contains the text.
 */
export interface GoldenCase {
  name: string;
  dialects: Dialect[];
  params: SqlValue[];
  paramsText: string | null;
  sql: string;
  expected: Map<string, string>; // "sqlite" | "postgres" | "both" -> text
  /** Lines before the case (comments), kept when rewriting. */
  preamble: string[];
}

export function readGoldenFile(path: string): { cases: GoldenCase[]; trailer: string[] } {
  const lines = fs.readFileSync(path, "utf8").split("\n");
  const cases: GoldenCase[] = [];
  let preamble: string[] = [];
  let current: GoldenCase | null = null;
  let block: string | null = null;
  let blockLines: string[] = [];
  let inSql = false;
  const closeBlock = () => {
    if (current && block !== null) current.expected.set(block, trimBlank(blockLines).join("\n"));
    block = null;
    blockLines = [];
  };
  for (const line of lines) {
    if (line.startsWith("=== ")) {
      closeBlock();
      current = { name: line.slice(4).trim(), dialects: ["sqlite", "postgres"], params: [], paramsText: null, sql: "", expected: new Map(), preamble };
      cases.push(current);
      preamble = [];
      inSql = false;
      continue;
    }
    if (!current) {
      preamble.push(line);
      continue;
    }
    if (line.startsWith("--- ")) {
      closeBlock();
      inSql = false;
      block = line.slice(4).trim();
      continue;
    }
    if (block !== null) {
      blockLines.push(line);
      continue;
    }
    if (inSql && !line.startsWith("dialects:") && !line.startsWith("params:")) {
      current.sql += `\n${line}`;
    } else if (line.startsWith("dialects:")) {
      inSql = false;
      const value = line.slice(9).trim();
      current.dialects = value === "both" ? ["sqlite", "postgres"] : [value as Dialect];
    } else if (line.startsWith("params:")) {
      inSql = false;
      current.paramsText = line.slice(7).trim();
      current.params = (JSON.parse(current.paramsText) as unknown[]).map(decodeParam);
    } else if (line.startsWith("sql:")) {
      current.sql = line.slice(4).trim();
      inSql = true;
    } else if (line.trim() !== "") {
      throw new Error(`${path}: unexpected line in case "${current.name}": ${line}`);
    }
  }
  closeBlock();
  // Blank lines between cases belong to no block.
  for (const c of cases) c.sql = c.sql.trim();
  const trailer = preamble;
  return { cases, trailer };
}

function trimBlank(lines: string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out[out.length - 1]!.trim() === "") out.pop();
  return out;
}

function decodeParam(value: unknown): SqlValue {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const o = value as { bigint?: string; blob?: string };
    if (o.bigint !== undefined) return BigInt(o.bigint);
    if (o.blob !== undefined) return new Uint8Array(Buffer.from(o.blob, "hex"));
  }
  return value as SqlValue;
}

export function expectedFor(c: GoldenCase, dialect: Dialect): string | undefined {
  return c.expected.get(dialect) ?? c.expected.get("both");
}

export function writeGoldenFile(path: string, file: { cases: GoldenCase[]; trailer: string[] }, actual: Map<GoldenCase, Map<Dialect, string>>): void {
  const out: string[] = [];
  for (const c of file.cases) {
    out.push(...c.preamble);
    out.push(`=== ${c.name}`);
    if (c.dialects.length === 1) out.push(`dialects: ${c.dialects[0]}`);
    if (c.paramsText !== null) out.push(`params: ${c.paramsText}`);
    const [first, ...more] = c.sql.split("\n");
    out.push(`sql: ${first}`, ...more);
    const results = actual.get(c) ?? new Map<Dialect, string>();
    const texts = c.dialects.map((d) => results.get(d) ?? expectedFor(c, d) ?? "");
    if (c.dialects.length === 2 && texts[0] === texts[1]) out.push("--- both", texts[0]!);
    else c.dialects.forEach((d, i) => out.push(`--- ${d}`, texts[i]!));
    out.push("");
  }
  out.push(...file.trailer);
  while (out.length > 1 && out[out.length - 1] === "" && out[out.length - 2] === "") out.pop();
  fs.writeFileSync(path, out.join("\n"));
}

/** Plans a case and renders the plan (or the refusal) as the text kept in golden files. */
export function runGoldenCase(c: GoldenCase, dialect: Dialect, snapshot: RoutingSnapshot): string {
  try {
    const analysis = analyze(c.sql, { dialect, params: c.params });
    return formatPlan(planStatement({ sql: c.sql, params: c.params, analysis }, snapshot));
  } catch (error) {
    if (isMyceliumError(error)) return `error: ${error.code}${error.reason ? ` (${error.reason})` : ""}\n  ${error.message.split("\n").join("\n  ")}`;
    if (error instanceof Error && error.name === "SqlError") return `sql error: ${(error as Error & { code: string }).code}\n  ${error.message}`;
    throw error;
  }
}

export function formatPlan(plan: router.RoutePlan): string {
  const out: string[] = [];
  const kind = router.statementKindToJSON(plan.kind).replace("STATEMENT_KIND_", "").toLowerCase();
  out.push(`${kind} on ${plan.tables.join(", ")}${plan.isWrite ? " (write)" : ""}`);
  if (plan.colocationGroup) out.push(`colocation group: ${plan.colocationGroup}`);
  if (plan.referenceTables.length > 0) out.push(`reference tables: ${plan.referenceTables.join(", ")}`);
  const statements = plan.targets.map((t) => statementText(t.statement));
  const shared = statements.every((s) => s === statements[0]) && plan.targets.length > 1;
  if (shared) out.push(`every target runs: ${statements[0]}`);
  for (const t of plan.targets) {
    out.push(`target ${ref(t.shard)} primary ${t.primaryNodeId} replicas ${t.replicaNodeIds.join(",")}`);
    if (!shared) out.push(`  runs: ${statementText(t.statement)}`);
    if (t.colocatedShards.length > 0) out.push(`  colocated: ${t.colocatedShards.map(ref).join(", ")}`);
    if (t.referenceShards.length > 0) out.push(`  reference: ${t.referenceShards.map(ref).join(", ")}`);
  }
  const m = plan.merge;
  if (m) {
    const flags = [
      m.aggregate ? "aggregate" : null,
      m.distinct ? "distinct" : null,
      m.hiddenColumnCount ? `hidden ${m.hiddenColumnCount}` : null,
      m.hasLimit ? `limit ${m.limit}` : null,
      m.offset ? `offset ${m.offset}` : null,
    ].filter(Boolean);
    out.push(`merge${flags.length ? `: ${flags.join(", ")}` : ": concatenate"}`);
    for (const column of m.columns) {
      const kindName = router.aggregateKindToJSON(column.aggregate).replace("AGGREGATE_KIND_", "");
      const avg = column.aggregate === router.AggregateKind.AGGREGATE_KIND_AVG ? ` (sum ${column.sourceIndex} / count ${column.countIndex})` : "";
      out.push(`  column ${column.sourceIndex}: ${kindName}${avg}${column.name ? ` named ${JSON.stringify(column.name)}` : ""}`);
    }
    if (m.groupBy.length > 0) out.push(`  group by: ${m.groupBy.join(", ")}`);
    if (m.having) out.push(`  having: ${condition(m.having)}`);
    if (m.orderBy.length > 0) {
      out.push(`  order by: ${m.orderBy.map((k) => `${k.columnIndex} ${k.descending ? "DESC" : "ASC"} NULLS ${k.nullsFirst ? "FIRST" : "LAST"}`).join(", ")}`);
    }
  }
  if (plan.notes.length > 0) out.push("notes:", ...plan.notes.map((n) => `  - ${n}`));
  return out.join("\n");
}

function ref(shard: common.ShardRef | undefined): string {
  return `${shard?.shardId}@${shard?.epoch}`;
}

function statementText(statement: common.Statement | undefined): string {
  const params = (statement?.params ?? []).map(fromValue);
  return `${statement?.sql}${params.length ? `  ${show(params)}` : ""}`;
}

function show(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `x'${Buffer.from(v).toString("hex")}'` : v));
}

const operators: Record<number, string> = { 1: "=", 2: "<>", 3: "<", 4: "<=", 5: ">", 6: ">=" };

function condition(c: router.MergeCondition): string {
  const kind = c.kind!;
  switch (kind.$case) {
    case "all":
      return `(${kind.value.conditions.map(condition).join(" AND ")})`;
    case "any":
      return `(${kind.value.conditions.map(condition).join(" OR ")})`;
    case "not":
      return `NOT ${condition(kind.value)}`;
    case "compare":
      return `${operand(kind.value.left)} ${operators[kind.value.operator]} ${operand(kind.value.right)}`;
    case "nullTest":
      return `${operand(kind.value.operand)} IS ${kind.value.negated ? "NOT " : ""}NULL`;
  }
}

function operand(o: router.MergeOperand | undefined): string {
  const kind = o?.kind;
  if (!kind) return "?";
  return kind.$case === "columnIndex" ? `column ${kind.value}` : show(fromValue(kind.value));
}
