import type {
  Aggregate,
  Analysis,
  ColumnDef,
  ColumnRef,
  Condition,
  DdlInfo,
  Dialect,
  ExprValue,
  HavingCondition,
  HavingOperand,
  InsertInfo,
  JoinColumn,
  JoinInfo,
  OrderByItem,
  SelectColumn,
  SelectShape,
  SqlValue,
  TableOccurrence,
} from "./types";
import { SqlError, positionOf } from "./errors";
import { parseStatement, type ParsedStatement, type PgNode } from "./parser";
import { fingerprintTokens } from "./fingerprint";
import { countParameters, type Token } from "./lexer";
import { literalSql } from "./values";

export interface AnalyzeOptions {
  dialect: Dialect;
  /** When given, their number must equal the number of `?` (PARAMETER_MISMATCH otherwise). Not stored in the analysis. */
  params?: readonly SqlValue[];
}

/** Analyses one statement. Throws SqlError. The result is deeply frozen and does not depend on parameter values. */
export function analyze(sql: string, options: AnalyzeOptions): Analysis {
  if (options.dialect !== "sqlite" && options.dialect !== "postgres") {
    throw new SqlError("UNSUPPORTED", `unknown dialect "${String(options.dialect)}": expected "sqlite" or "postgres"`);
  }
  const parsed = parseStatement(sql, options.dialect);
  const analysis = new Analyzer(parsed).run();
  if (options.params) checkParameterCount(analysis, options.params);
  return deepFreeze(analysis);
}

export function checkParameterCount(analysis: Analysis, params: readonly SqlValue[]): void {
  if (params.length !== analysis.parameterCount) {
    throw new SqlError(
      "PARAMETER_MISMATCH",
      `statement has ${analysis.parameterCount} ? placeholder(s) but ${params.length} parameter(s) were given`,
    );
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof Uint8Array) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Tree helpers

export function kindOf(node: PgNode): string {
  for (const key in node) return key;
  return "";
}

function str(node: PgNode | undefined): string | undefined {
  return node?.String?.sval;
}

function funcName(call: PgNode): string {
  const parts: PgNode[] = call.funcname ?? [];
  return (str(parts[parts.length - 1]) ?? "").toLowerCase();
}

const AGGREGATES = new Set([
  "count", "sum", "min", "max", "avg", "total", "group_concat", "string_agg", "array_agg", "bool_and", "bool_or",
  "every", "json_agg", "jsonb_agg", "json_group_array", "json_group_object", "json_object_agg", "jsonb_object_agg",
  "bit_and", "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
  "percentile_cont", "percentile_disc", "mode", "xmlagg", "median",
]);

/** The aggregate a FuncCall computes, or undefined for a plain function / window function. */
export function aggregateOf(call: PgNode, dialect: Dialect): Aggregate | undefined {
  if (call.over) return undefined;
  const name = funcName(call);
  if (!AGGREGATES.has(name)) return undefined;
  const argCount = (call.args ?? []).length;
  if ((name === "min" || name === "max") && argCount !== 1) return undefined; // SQLite's scalar min(a, b)
  if (dialect === "sqlite" && name === "group_concat" && argCount === 0) return undefined;
  switch (name) {
    case "count":
      return call.agg_distinct ? "count_distinct" : "count";
    case "sum":
    case "avg":
      return call.agg_distinct ? "other" : name;
    case "min":
    case "max":
      return name;
    default:
      return "other";
  }
}

function containsAggregate(node: unknown, dialect: Dialect): boolean {
  if (!node || typeof node !== "object") return false;
  if (Array.isArray(node)) return node.some((n) => containsAggregate(n, dialect));
  const obj = node as PgNode;
  if (obj.SubLink) return false;
  if (obj.FuncCall && aggregateOf(obj.FuncCall, dialect)) return true;
  for (const key in obj) if (key !== "location" && containsAggregate(obj[key], dialect)) return true;
  return false;
}

function ident(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.split('"').join('""')}"`;
}

function jsonWithoutLocations(node: unknown): string {
  return JSON.stringify(node, (key, value) => (key === "location" || key.endsWith("_location") ? undefined : value));
}

/** The value of an A_Const, or undefined when it is not a plain literal (bit strings). */
function constValue(c: PgNode, dialect: Dialect): SqlValue | undefined {
  if (c.isnull) return null;
  if (c.ival) return c.ival.ival ?? 0;
  if (c.fval) {
    const text: string = c.fval.fval;
    if (/^[+-]?\d+$/.test(text)) {
      const big = BigInt(text);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (/^[+-]?0x[0-9a-f_]+$/i.test(text)) return Number(BigInt(text.replace(/_/g, "")));
    return Number(text.replace(/_/g, ""));
  }
  if (c.sval) return c.sval.sval ?? "";
  if (c.boolval) {
    const value = c.boolval.boolval ?? false;
    return dialect === "sqlite" ? (value ? 1 : 0) : value;
  }
  if (c.bsval) {
    const text: string = c.bsval.bsval;
    if (text[0] === "x" || text[0] === "X") {
      const hex = text.slice(1);
      if (hex.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(hex)) return new Uint8Array(Buffer.from(hex, "hex"));
    }
    return undefined;
  }
  return undefined;
}

/** Canonical text of an expression: equal texts mean equal expressions. */
export function printExpr(node: PgNode | undefined, dialect: Dialect): string {
  if (!node) return "";
  const k = kindOf(node);
  const b = node[k];
  switch (k) {
    case "ColumnRef":
      return (b.fields as PgNode[]).map((f) => (f.A_Star ? "*" : ident(str(f) ?? ""))).join(".");
    case "A_Const": {
      if (b.fval) return b.fval.fval;
      const value = constValue(b, dialect);
      return value === undefined ? jsonWithoutLocations(node) : literalSql(value);
    }
    case "ParamRef":
      return `$${b.number}`;
    case "FuncCall": {
      if (b.over || b.agg_order || b.agg_within_group) return jsonWithoutLocations(node);
      const name = (b.funcname as PgNode[]).map((f) => ident(str(f) ?? "")).join(".");
      const args = b.agg_star ? "*" : ((b.args ?? []) as PgNode[]).map((a) => printExpr(a, dialect)).join(", ");
      const filter = b.agg_filter ? ` FILTER (WHERE ${printExpr(b.agg_filter, dialect)})` : "";
      return `${name}(${b.agg_distinct ? "DISTINCT " : ""}${args})${filter}`;
    }
    case "A_Expr": {
      const op = str(b.name?.[b.name.length - 1]) ?? "";
      const l = b.lexpr ? printExpr(b.lexpr, dialect) : "";
      switch (b.kind) {
        case "AEXPR_OP":
          return b.lexpr ? `(${l} ${op} ${printExpr(b.rexpr, dialect)})` : `(${op} ${printExpr(b.rexpr, dialect)})`;
        case "AEXPR_IN": {
          const items = (b.rexpr?.List?.items ?? []) as PgNode[];
          return `(${l} ${op === "=" ? "IN" : "NOT IN"} (${items.map((i) => printExpr(i, dialect)).join(", ")}))`;
        }
        case "AEXPR_LIKE":
        case "AEXPR_ILIKE": {
          const word = (op.startsWith("!") ? "NOT " : "") + (b.kind === "AEXPR_LIKE" ? "LIKE" : "ILIKE");
          return `(${l} ${word} ${printExpr(b.rexpr, dialect)})`;
        }
        case "AEXPR_BETWEEN":
        case "AEXPR_NOT_BETWEEN": {
          const items = (b.rexpr?.List?.items ?? []) as PgNode[];
          const word = b.kind === "AEXPR_BETWEEN" ? "BETWEEN" : "NOT BETWEEN";
          return `(${l} ${word} ${printExpr(items[0], dialect)} AND ${printExpr(items[1], dialect)})`;
        }
        default:
          return jsonWithoutLocations(node);
      }
    }
    case "BoolExpr": {
      const args = ((b.args ?? []) as PgNode[]).map((a) => printExpr(a, dialect));
      if (b.boolop === "NOT_EXPR") return `(NOT ${args[0]})`;
      return `(${args.join(b.boolop === "AND_EXPR" ? " AND " : " OR ")})`;
    }
    case "NullTest":
      return `(${printExpr(b.arg, dialect)} ${b.nulltesttype === "IS_NULL" ? "IS NULL" : "IS NOT NULL"})`;
    case "TypeCast": {
      const type = ((b.typeName?.names ?? []) as PgNode[]).map((n) => str(n)).join(".");
      const mods = b.typeName?.typmods ? `(${(b.typeName.typmods as PgNode[]).map((m) => printExpr(m, dialect)).join(", ")})` : "";
      return `CAST(${printExpr(b.arg, dialect)} AS ${type}${mods})`;
    }
    case "SQLValueFunction":
      return String(b.op).replace(/^SVFOP_/, "").toLowerCase();
    case "CollateClause":
      return `${printExpr(b.arg, dialect)} COLLATE ${((b.collname ?? []) as PgNode[]).map((n) => ident(str(n) ?? "")).join(".")}`;
    default:
      return jsonWithoutLocations(node);
  }
}

/** A literal, `?`, or DEFAULT as an ExprValue; anything else becomes an expression. */
function exprValue(node: PgNode, dialect: Dialect): ExprValue {
  if (node.A_Const) {
    const value = constValue(node.A_Const, dialect);
    if (value !== undefined) return { kind: "value", value };
  }
  if (node.ParamRef) return { kind: "param", index: node.ParamRef.number - 1 };
  if (node.SetToDefault) return { kind: "default" };
  return { kind: "expression", text: printExpr(node, dialect) };
}

// ---------------------------------------------------------------------------------------------------------
// Determinism

const NONDETERMINISTIC_FUNCTIONS = new Set([
  "random", "randomblob", "random_normal", "setseed", "now", "clock_timestamp", "statement_timestamp",
  "transaction_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
  "uuid_generate_v4", "uuidv4", "uuidv7", "uuid", "nextval", "currval", "lastval", "setval", "changes",
  "total_changes", "last_insert_rowid", "sqlite_version", "version", "pg_backend_pid", "txid_current",
  "pg_current_xact_id", "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
  "pg_postmaster_start_time", "current_setting", "unixepoch_now",
]);
/** SQLite date/time functions: nondeterministic with 'now', local-time modifiers, or (for most) no argument. */
const SQLITE_TIME_FUNCTIONS = new Set(["date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff"]);
const TIME_STRINGS = new Set(["now", "today", "tomorrow", "yesterday"]);
const TIME_TYPES = new Set(["date", "time", "timetz", "timestamp", "timestamptz", "abstime", "interval"]);

// ---------------------------------------------------------------------------------------------------------
// Conditions with unresolved qualifiers (resolved per table occurrence at the end)

type RawCondition =
  | { kind: "and" | "or"; parts: RawCondition[] }
  | { kind: "compare"; qualifier: string | null; column: string; op: "=" | "<" | "<=" | ">" | ">="; value: ExprValue }
  | { kind: "in"; qualifier: string | null; column: string; values: ExprValue[] }
  | { kind: "between"; qualifier: string | null; column: string; low: ExprValue; high: ExprValue }
  | { kind: "opaque" };

const FLIP: Record<string, "=" | "<" | "<=" | ">" | ">="> = { "=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<=" };

interface Occurrence {
  table: string | null; // null: derived table, CTE reference, function, `excluded`
  alias: string;
  target: boolean;
  nested: boolean;
  conjuncts: RawCondition[];
}

interface OccurrenceColumn {
  occ: Occurrence;
  column: string;
}

interface Scope {
  occurrences: Occurrence[];
  parent: Scope | null;
  ctes: Set<string>;
  /** Output names usable in ORDER BY / GROUP BY of this scope. */
  outputNames?: Set<string>;
}

interface JoinDraft {
  info: Omit<JoinInfo, "on" | "leftOccurrences" | "rightOccurrences">;
  pairs: Array<[OccurrenceColumn, OccurrenceColumn]>;
  left: Occurrence[];
  right: Occurrence[];
}

class Analyzer {
  private readonly dialect: Dialect;
  private readonly tableSet = new Set<string>();
  private readonly reads = new Map<string, ColumnRef>();
  private readonly writes = new Map<string, ColumnRef>();
  private readonly nondeterministic = new Set<string>();
  private readonly occurrences: Occurrence[] = [];
  private readonly joins: JoinDraft[] = [];
  private hasSubquery = false;
  private hasWindow = false;
  /** > 0 while walking a subquery, derived table, CTE or set-operation arm. */
  private nesting = 0;

  constructor(private readonly parsed: ParsedStatement) {
    this.dialect = parsed.dialect;
  }

  run(): Analysis {
    const parsed = this.parsed;
    const base = {
      dialect: this.dialect,
      fingerprint: fingerprintTokens(parsed.body),
      parameterCount: countParameters(parsed.tokens),
    };
    if (!parsed.root) {
      const transaction = parsed.sqliteOther?.transaction;
      return this.finish({ ...base, kind: "other", isWrite: false, ...(transaction ? { transaction } : {}) });
    }
    const root = parsed.root;
    const k = kindOf(root);
    const b = root[k];
    switch (k) {
      case "SelectStmt": {
        const scope = this.select(b, null);
        const select = this.selectShape(b, scope);
        return this.finish({ ...base, kind: "select", isWrite: false, select });
      }
      case "InsertStmt": {
        const insert = this.insert(b);
        return this.finish({ ...base, kind: "insert", isWrite: true, insert });
      }
      case "UpdateStmt": {
        const update = this.update(b);
        return this.finish({ ...base, kind: "update", isWrite: true, update });
      }
      case "DeleteStmt": {
        const info = this.delete(b);
        return this.finish({ ...base, kind: "delete", isWrite: true, delete: info });
      }
      case "TruncateStmt": {
        const tables = ((b.relations ?? []) as PgNode[]).map((r) => this.relationName(r.RangeVar));
        for (const table of tables) {
          this.tableSet.add(table);
          this.write(table, "*");
          this.occurrences.push({ table, alias: table, target: true, nested: false, conjuncts: [] });
        }
        return this.finish({ ...base, kind: "delete", isWrite: true, delete: { table: tables[0] ?? "", returning: false } });
      }
      case "TransactionStmt":
        return this.finish({ ...base, kind: "other", isWrite: false, transaction: transactionAction(b.kind) });
      case "VariableSetStmt":
      case "VariableShowStmt":
      case "ExplainStmt":
        return this.finish({ ...base, kind: "other", isWrite: false });
      default: {
        const ddl = this.ddl(k, b);
        return this.finish({ ...base, kind: "ddl", isWrite: true, ddl });
      }
    }
  }

  private finish(partial: Omit<Analysis, "tables" | "readSet" | "writeSet" | "nondeterministic" | "joins" | "occurrences">): Analysis {
    const occurrences: TableOccurrence[] = [];
    const indexes = new Map<Occurrence, number>();
    for (const occ of this.occurrences) {
      if (occ.table === null) continue;
      const parts = occ.conjuncts.map((c) => resolveCondition(c, occ)).filter((c) => c.kind !== "opaque");
      const restriction: Condition = parts.length === 0 ? { kind: "opaque" } : parts.length === 1 ? parts[0]! : { kind: "and", parts };
      indexes.set(occ, occurrences.length);
      occurrences.push({ table: occ.table, alias: occ.alias, restriction, target: occ.target, nested: occ.nested });
    }
    const side = (list: Occurrence[]): number[] => list.flatMap((occ) => (indexes.has(occ) ? [indexes.get(occ)!] : []));
    const column = (c: OccurrenceColumn): JoinColumn => ({ table: c.occ.table!, column: c.column, occurrence: indexes.get(c.occ)! });
    const joins: JoinInfo[] = this.joins.map((j) => ({
      ...j.info,
      on: j.pairs.map(([l, r]) => [column(l), column(r)] as [JoinColumn, JoinColumn]),
      leftOccurrences: side(j.left),
      rightOccurrences: side(j.right),
    }));
    return {
      ...partial,
      tables: [...this.tableSet],
      readSet: [...this.reads.values()],
      writeSet: [...this.writes.values()],
      nondeterministic: [...this.nondeterministic],
      joins,
      occurrences,
    } as Analysis;
  }

  // ----- names and column references

  private relationName(rangeVar: PgNode): string {
    const schema: string | undefined = rangeVar.schemaname;
    const name: string = rangeVar.relname;
    return schema && schema !== "main" && schema !== "public" && schema !== "temp" ? `${schema}.${name}` : name;
  }

  private read(table: string, column: string): void {
    const key = `${table}\u0000${column}`;
    if (!this.reads.has(key)) this.reads.set(key, { table, column });
  }

  private write(table: string, column: string): void {
    const key = `${table}\u0000${column}`;
    if (!this.writes.has(key)) this.writes.set(key, { table, column });
  }

  private findOccurrence(scope: Scope | null, qualifier: string): Occurrence | undefined {
    for (let s = scope; s; s = s.parent) {
      for (let i = s.occurrences.length - 1; i >= 0; i--) if (s.occurrences[i]!.alias === qualifier) return s.occurrences[i];
    }
    return undefined;
  }

  /** The nearest scope's occurrences that are real tables (unqualified columns may belong to any of them). */
  private candidates(scope: Scope | null): Occurrence[] {
    for (let s = scope; s; s = s.parent) if (s.occurrences.length > 0) return s.occurrences.filter((o) => o.table !== null);
    return [];
  }

  private columnRef(ref: PgNode, scope: Scope | null, outputNames?: Set<string>): void {
    const fields = ref.fields as PgNode[];
    const last = fields[fields.length - 1]!;
    const qualifier = fields.length >= 2 ? str(fields[fields.length - 2]) : undefined;
    const column = last.A_Star ? "*" : str(last);
    if (column === undefined) return;
    if (qualifier !== undefined) {
      const occ = this.findOccurrence(scope, qualifier);
      if (occ?.table) this.read(occ.table, column);
      return;
    }
    if (outputNames?.has(column)) return; // ORDER BY / GROUP BY alias of an output column
    for (const occ of this.candidates(scope)) this.read(occ.table!, column);
  }

  // ----- expressions: reads, nondeterminism, subqueries, windows

  private expr(node: unknown, scope: Scope | null, outputNames?: Set<string>): void {
    if (!node || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (const item of node) this.expr(item, scope, outputNames);
      return;
    }
    const obj = node as PgNode;
    const k = kindOf(obj);
    const b = obj[k];
    switch (k) {
      case "ColumnRef":
        this.columnRef(b, scope, outputNames);
        return;
      case "A_Const":
      case "ParamRef":
        return;
      case "FuncCall": {
        const name = funcName(b);
        const args = (b.args ?? []) as PgNode[];
        if (NONDETERMINISTIC_FUNCTIONS.has(name)) this.nondeterministic.add(name);
        if (SQLITE_TIME_FUNCTIONS.has(name)) {
          const strings = args.map((a) => (a.A_Const?.sval ? String(a.A_Const.sval.sval ?? "").trim().toLowerCase() : undefined));
          if (strings.includes("now")) this.nondeterministic.add(`${name}('now')`);
          else if (strings.some((s) => s !== undefined && (s.includes("localtime") || s === "utc"))) this.nondeterministic.add(`${name}(..., 'localtime')`);
          else if (args.length === 0 && name !== "strftime" && name !== "timediff") this.nondeterministic.add(`${name}()`);
        }
        if (b.over) this.hasWindow = true;
        this.expr(args, scope, outputNames);
        this.expr(b.agg_filter, scope, outputNames);
        this.expr(b.agg_order, scope, outputNames);
        this.expr(b.over, scope, outputNames);
        return;
      }
      case "SQLValueFunction": {
        const op = String(b.op);
        const name = op.replace(/^SVFOP_/, "").replace(/_N$/, "").toLowerCase();
        if (name !== "current_catalog" && name !== "current_schema") this.nondeterministic.add(name);
        return;
      }
      case "TypeCast": {
        const text = b.arg?.A_Const?.sval?.sval;
        const names = ((b.typeName?.names ?? []) as PgNode[]).map((n) => str(n));
        const type = names[names.length - 1];
        if (typeof text === "string" && TIME_STRINGS.has(text.trim().toLowerCase()) && type && TIME_TYPES.has(type)) {
          this.nondeterministic.add(`'${text.trim().toLowerCase()}'::${type}`);
        }
        this.expr(b.arg, scope, outputNames);
        return;
      }
      case "SubLink":
        this.hasSubquery = true;
        this.expr(b.testexpr, scope, outputNames);
        this.subquery(b.subselect, scope);
        return;
      case "RangeVar":
        this.tableSet.add(this.relationName(b));
        return;
      default:
        // Any other node: walk its children so tables, columns and functions inside are still seen.
        if (k && k[0]! >= "A" && k[0]! <= "Z" && b && typeof b === "object") {
          for (const key in b) if (key !== "location") this.expr(b[key], scope, outputNames);
        } else {
          for (const key in obj) if (key !== "location") this.expr(obj[key], scope, outputNames);
        }
    }
  }

  private subquery(node: PgNode | undefined, scope: Scope | null): void {
    if (!node) return;
    this.nesting++;
    try {
      if (node.SelectStmt) this.select(node.SelectStmt, scope);
      else this.expr(node, scope);
    } finally {
      this.nesting--;
    }
  }

  // ----- conditions

  private condition(node: PgNode | undefined): RawCondition {
    if (!node) return { kind: "opaque" };
    if (node.BoolExpr) {
      const b = node.BoolExpr;
      if (b.boolop === "NOT_EXPR") return { kind: "opaque" };
      const parts = ((b.args ?? []) as PgNode[]).map((a) => this.condition(a));
      return { kind: b.boolop === "AND_EXPR" ? "and" : "or", parts };
    }
    const e = node.A_Expr;
    if (!e) return { kind: "opaque" };
    const op = str(e.name?.[e.name.length - 1]);
    switch (e.kind) {
      case "AEXPR_OP": {
        if (op !== "=" && op !== "<" && op !== "<=" && op !== ">" && op !== ">=") return { kind: "opaque" };
        if (!e.lexpr || !e.rexpr) return { kind: "opaque" };
        const left = this.simpleColumn(e.lexpr);
        const right = this.simpleColumn(e.rexpr);
        if (left && !right) {
          const value = this.operand(e.rexpr);
          return value ? { kind: "compare", qualifier: left.qualifier, column: left.column, op, value } : { kind: "opaque" };
        }
        if (right && !left) {
          const value = this.operand(e.lexpr);
          return value ? { kind: "compare", qualifier: right.qualifier, column: right.column, op: FLIP[op]!, value } : { kind: "opaque" };
        }
        return { kind: "opaque" };
      }
      case "AEXPR_IN": {
        if (op !== "=") return { kind: "opaque" }; // NOT IN
        const column = this.simpleColumn(e.lexpr);
        const items = e.rexpr?.List?.items as PgNode[] | undefined;
        if (!column || !items) return { kind: "opaque" };
        const values: ExprValue[] = [];
        for (const item of items) {
          const value = this.operand(item);
          if (!value) return { kind: "opaque" };
          values.push(value);
        }
        return { kind: "in", qualifier: column.qualifier, column: column.column, values };
      }
      case "AEXPR_BETWEEN": {
        const column = this.simpleColumn(e.lexpr);
        const items = e.rexpr?.List?.items as PgNode[] | undefined;
        if (!column || !items || items.length !== 2) return { kind: "opaque" };
        const low = this.operand(items[0]!);
        const high = this.operand(items[1]!);
        if (!low || !high) return { kind: "opaque" };
        return { kind: "between", qualifier: column.qualifier, column: column.column, low, high };
      }
      default:
        return { kind: "opaque" };
    }
  }

  private simpleColumn(node: PgNode | undefined): { qualifier: string | null; column: string } | undefined {
    const fields = node?.ColumnRef?.fields as PgNode[] | undefined;
    if (!fields) return undefined;
    const column = str(fields[fields.length - 1]);
    if (column === undefined) return undefined;
    return { qualifier: fields.length >= 2 ? (str(fields[fields.length - 2]) ?? null) : null, column };
  }

  private operand(node: PgNode): ExprValue | undefined {
    const value = exprValue(node, this.dialect);
    return value.kind === "value" || value.kind === "param" ? value : undefined;
  }

  // ----- SELECT

  private select(b: PgNode, parent: Scope | null): Scope {
    const scope: Scope = { occurrences: [], parent, ctes: new Set() };
    if (b.withClause) this.withClause(b.withClause, scope);
    if (b.op && b.op !== "SETOP_NONE") {
      this.nesting++;
      try {
        this.select(b.larg, scope);
        this.select(b.rarg, scope);
      } finally {
        this.nesting--;
      }
      const names = new Set<string>();
      this.expr(b.sortClause, null, names);
      this.expr(b.limitCount, scope);
      this.expr(b.limitOffset, scope);
      return scope;
    }
    if (b.valuesLists) this.expr(b.valuesLists, scope);
    const fromOccurrences: Occurrence[][] = [];
    for (const item of (b.fromClause ?? []) as PgNode[]) fromOccurrences.push(this.fromItem(item, scope));
    const outputNames = new Set<string>();
    for (const target of (b.targetList ?? []) as PgNode[]) {
      const t = target.ResTarget;
      if (t?.name) outputNames.add(t.name);
      this.expr(t?.val, scope);
    }
    if (b.whereClause) {
      this.expr(b.whereClause, scope);
      const condition = this.condition(b.whereClause);
      for (const occ of scope.occurrences) occ.conjuncts.push(condition);
      this.whereJoins(b.whereClause, scope, fromOccurrences);
    }
    this.expr(b.groupClause, scope, outputNames);
    this.expr(b.havingClause, scope, outputNames);
    this.expr(b.windowClause, scope, outputNames);
    this.expr(b.distinctClause, scope, outputNames);
    for (const sort of (b.sortClause ?? []) as PgNode[]) this.expr(sort.SortBy?.node, scope, outputNames);
    this.expr(b.limitCount, scope);
    this.expr(b.limitOffset, scope);
    return scope;
  }

  private withClause(w: PgNode, scope: Scope): void {
    this.hasSubquery = true;
    const ctes = (w.ctes ?? []) as PgNode[];
    for (const cte of ctes) scope.ctes.add(cte.CommonTableExpr.ctename);
    for (const cte of ctes) {
      const query = cte.CommonTableExpr.ctequery as PgNode;
      if (!query.SelectStmt) {
        throw new SqlError("UNSUPPORTED", `data-modifying WITH ("${cte.CommonTableExpr.ctename}") is not supported`);
      }
      this.nesting++;
      try {
        this.select(query.SelectStmt, scope);
      } finally {
        this.nesting--;
      }
    }
  }

  private isCte(scope: Scope | null, name: string): boolean {
    for (let s = scope; s; s = s.parent) if (s.ctes.has(name)) return true;
    return false;
  }

  private fromItem(node: PgNode, scope: Scope): Occurrence[] {
    const k = kindOf(node);
    const b = node[k];
    switch (k) {
      case "RangeVar": {
        const name = this.relationName(b);
        const table = !b.schemaname && this.isCte(scope, b.relname) ? null : name;
        if (table !== null) this.tableSet.add(table);
        const occ: Occurrence = { table, alias: b.alias?.aliasname ?? b.relname, target: false, nested: this.nesting > 0, conjuncts: [] };
        scope.occurrences.push(occ);
        this.occurrences.push(occ);
        return [occ];
      }
      case "JoinExpr": {
        const left = this.fromItem(b.larg, scope);
        const right = this.fromItem(b.rarg, scope);
        const type = joinType(b.jointype, !!b.quals || !!b.usingClause || !!b.isNatural);
        const info: JoinDraft["info"] = { type, left: firstTable(left), right: firstTable(right), using: !!b.usingClause || !!b.isNatural };
        const draft: JoinDraft = { info, pairs: [], left, right };
        this.joins.push(draft);
        for (const u of (b.usingClause ?? []) as PgNode[]) {
          const column = str(u)!;
          const l = lastOccurrence(left);
          const r = firstOccurrence(right);
          for (const occ of [...left, ...right]) if (occ.table) this.read(occ.table, column);
          if (l && r) draft.pairs.push([{ occ: l, column }, { occ: r, column }]);
        }
        if (b.quals) {
          this.expr(b.quals, scope);
          const condition = this.condition(b.quals);
          const restricted = type === "inner" ? [...left, ...right] : type === "left" ? right : type === "right" ? left : [];
          for (const occ of restricted) occ.conjuncts.push(condition);
          for (const [l, r] of this.equalities(b.quals, scope)) this.addJoinPair(draft, l, r);
          const leftNames = draft.pairs.length > 0 ? draft.pairs[0]![0].occ.table : undefined;
          if (leftNames) info.left = leftNames;
        }
        return [...left, ...right];
      }
      case "RangeSubselect": {
        this.hasSubquery = true;
        this.subquery(b.subquery, b.lateral ? scope : scope.parent);
        const occ: Occurrence = { table: null, alias: b.alias?.aliasname ?? "", target: false, nested: this.nesting > 0, conjuncts: [] };
        scope.occurrences.push(occ);
        return [occ];
      }
      default: {
        this.expr(node, scope);
        const alias = b?.alias?.aliasname ?? "";
        const occ: Occurrence = { table: null, alias, target: false, nested: this.nesting > 0, conjuncts: [] };
        scope.occurrences.push(occ);
        return [occ];
      }
    }
  }

  /** Top-level AND equalities `a.x = b.y` between two columns, resolved to occurrences. */
  private equalities(node: PgNode, scope: Scope): Array<[{ occ: Occurrence; column: string }, { occ: Occurrence; column: string }]> {
    const out: Array<[{ occ: Occurrence; column: string }, { occ: Occurrence; column: string }]> = [];
    const visit = (n: PgNode): void => {
      if (n.BoolExpr?.boolop === "AND_EXPR") {
        for (const a of n.BoolExpr.args as PgNode[]) visit(a);
        return;
      }
      const e = n.A_Expr;
      if (!e || e.kind !== "AEXPR_OP" || str(e.name?.[e.name.length - 1]) !== "=") return;
      const l = this.simpleColumn(e.lexpr);
      const r = this.simpleColumn(e.rexpr);
      if (!l?.qualifier || !r?.qualifier) return;
      const lo = this.findOccurrence(scope, l.qualifier);
      const ro = this.findOccurrence(scope, r.qualifier);
      if (lo && ro && lo !== ro) out.push([{ occ: lo, column: l.column }, { occ: ro, column: r.column }]);
    };
    visit(node);
    return out;
  }

  private addJoinPair(draft: JoinDraft, a: { occ: Occurrence; column: string }, b: { occ: Occurrence; column: string }): boolean {
    let l = a;
    let r = b;
    if (draft.left.includes(b.occ) && draft.right.includes(a.occ)) [l, r] = [b, a];
    if (!draft.left.includes(l.occ) || !draft.right.includes(r.occ) || !l.occ.table || !r.occ.table) return false;
    draft.pairs.push([l, r]);
    return true;
  }

  private whereJoins(where: PgNode, scope: Scope, items: Occurrence[][]): void {
    const local = this.occurrences.filter((o) => scope.occurrences.includes(o));
    for (const [a, b] of this.equalities(where, scope)) {
      if (!local.includes(a.occ) || !local.includes(b.occ)) continue;
      // The innermost join that has the two occurrences on opposite sides, else a join of two FROM items.
      const candidates = this.joins.filter(
        (j) => (j.left.includes(a.occ) && j.right.includes(b.occ)) || (j.left.includes(b.occ) && j.right.includes(a.occ)),
      );
      const innermost = candidates.sort((x, y) => x.left.length + x.right.length - (y.left.length + y.right.length))[0];
      if (innermost) {
        this.addJoinPair(innermost, a, b);
        continue;
      }
      const ia = items.findIndex((list) => list.includes(a.occ));
      const ib = items.findIndex((list) => list.includes(b.occ));
      if (ia === -1 || ib === -1 || ia === ib) continue;
      const [first, second] = ia < ib ? [a, b] : [b, a];
      let draft = this.joins.find((j) => j.info.type === "cross" && j.left === items[Math.min(ia, ib)] && j.right === items[Math.max(ia, ib)]);
      if (!draft) {
        draft = {
          info: { type: "cross", left: first.occ.table!, right: second.occ.table!, using: false },
          pairs: [],
          left: items[Math.min(ia, ib)]!,
          right: items[Math.max(ia, ib)]!,
        };
        this.joins.push(draft);
      }
      this.addJoinPair(draft, first, second);
    }
  }

  private selectShape(b: PgNode, scope: Scope): SelectShape {
    const dialect = this.dialect;
    let core = b;
    while (core.op && core.op !== "SETOP_NONE") core = core.larg;
    const columns: SelectColumn[] = ((core.targetList ?? []) as PgNode[]).map((target) => {
      const t = target.ResTarget;
      const val = t.val as PgNode;
      const fields = val.ColumnRef?.fields as PgNode[] | undefined;
      const isStar = !!fields && !!fields[fields.length - 1]!.A_Star;
      const name: string = t.name ?? (fields ? (isStar ? "*" : str(fields[fields.length - 1])!) : val.FuncCall ? funcName(val.FuncCall) : "?column?");
      const column: SelectColumn = { name, expression: printExpr(val, dialect), isStar };
      const aggregate = val.FuncCall ? aggregateOf(val.FuncCall, dialect) : undefined;
      if (aggregate) column.aggregate = aggregate;
      else if (containsAggregate(val, dialect)) column.aggregate = "other";
      return column;
    });
    const resolveOutput = (node: PgNode): { expression: string; outputIndex: number | null } => {
      const position = node.A_Const?.ival !== undefined ? (node.A_Const.ival.ival ?? 0) : undefined;
      if (position !== undefined) {
        const column = columns[position - 1];
        if (!column) {
          throw new SqlError("PARSE_ERROR", `position ${position} is not in the select list (${columns.length} columns)`);
        }
        return { expression: column.expression, outputIndex: position - 1 };
      }
      const expression = printExpr(node, dialect);
      const fields = node.ColumnRef?.fields as PgNode[] | undefined;
      if (fields?.length === 1) {
        const byAlias = ((core.targetList ?? []) as PgNode[]).findIndex((t) => t.ResTarget.name === str(fields[0]));
        if (byAlias !== -1) return { expression: columns[byAlias]!.expression, outputIndex: byAlias };
      }
      const same = columns.findIndex((c) => !c.isStar && c.expression === expression);
      return { expression, outputIndex: same === -1 ? null : same };
    };
    const aggregateAliases = new Set<string>();
    ((core.targetList ?? []) as PgNode[]).forEach((t, i) => {
      if (t.ResTarget.name && columns[i]!.aggregate) aggregateAliases.add(t.ResTarget.name);
    });
    const groupBy: string[] = [];
    const groupByOutputIndex: Array<number | null> = [];
    for (const g of (core.groupClause ?? []) as PgNode[]) {
      const resolved = resolveOutput(g);
      groupBy.push(resolved.expression);
      groupByOutputIndex.push(resolved.outputIndex);
    }
    const orderBy: OrderByItem[] = ((b.sortClause ?? []) as PgNode[]).map((s) => {
      const sort = s.SortBy;
      const resolved = resolveOutput(sort.node);
      const item: OrderByItem = { expression: resolved.expression, descending: sort.sortby_dir === "SORTBY_DESC", outputIndex: resolved.outputIndex };
      const aggregate = sort.node.FuncCall ? aggregateOf(sort.node.FuncCall, dialect) : undefined;
      if (resolved.outputIndex !== null) {
        const column = columns[resolved.outputIndex]!;
        if (column.aggregate) item.aggregate = column.aggregate;
      } else if (aggregate) item.aggregate = aggregate;
      else if (containsAggregate(sort.node, dialect) || referencesAlias(sort.node, aggregateAliases)) item.aggregate = "other";
      if (sort.sortby_nulls === "SORTBY_NULLS_FIRST") item.nullsFirst = true;
      if (sort.sortby_nulls === "SORTBY_NULLS_LAST") item.nullsFirst = false;
      return item;
    });
    if (b.limitOption === "LIMIT_OPTION_WITH_TIES") throw new SqlError("UNSUPPORTED", "FETCH ... WITH TIES is not supported");
    const from: string[] = [];
    for (const occ of scope.occurrences) if (occ.table) from.push(occ.table);
    const outputAliases = new Map<string, number>();
    ((core.targetList ?? []) as PgNode[]).forEach((t, i) => {
      if (t.ResTarget.name && !outputAliases.has(t.ResTarget.name)) outputAliases.set(t.ResTarget.name, i);
    });
    return {
      columns,
      distinct: !!core.distinctClause,
      groupBy,
      groupByOutputIndex,
      having: !!core.havingClause,
      ...(core.havingClause ? { havingCondition: this.havingCondition(core.havingClause, outputAliases) } : {}),
      orderBy,
      limit: b.limitCount && !isNullConst(b.limitCount) ? exprValue(b.limitCount, dialect) : null,
      offset: b.limitOffset ? exprValue(b.limitOffset, dialect) : null,
      hasSubquery: this.hasSubquery,
      hasWindow: this.hasWindow,
      hasUnion: !!b.op && b.op !== "SETOP_NONE",
      hasAggregate: columns.some((c) => c.aggregate) || containsAggregate(core.havingClause, dialect) || containsAggregate(b.sortClause, dialect),
      from,
    };
  }

  /** The HAVING clause as comparisons of aggregates with literals, for a merger to evaluate on combined groups. */
  private havingCondition(node: PgNode, outputAliases: Map<string, number>): HavingCondition {
    const opaque = (): HavingCondition => ({ kind: "opaque", text: printExpr(node, this.dialect) });
    if (node.BoolExpr) {
      const parts = ((node.BoolExpr.args ?? []) as PgNode[]).map((a) => this.havingCondition(a, outputAliases));
      if (node.BoolExpr.boolop === "NOT_EXPR") return { kind: "not", part: parts[0]! };
      return { kind: node.BoolExpr.boolop === "AND_EXPR" ? "and" : "or", parts };
    }
    if (node.NullTest) {
      const operand = this.havingOperand(node.NullTest.arg, outputAliases);
      return operand ? { kind: "is_null", negated: node.NullTest.nulltesttype !== "IS_NULL", operand } : opaque();
    }
    const e = node.A_Expr;
    if (!e) return opaque();
    if (e.kind === "AEXPR_OP") {
      let op = str(e.name?.[e.name.length - 1]);
      if (op === "!=") op = "<>";
      if (op !== "=" && op !== "<>" && op !== "<" && op !== "<=" && op !== ">" && op !== ">=") return opaque();
      const left = this.havingOperand(e.lexpr, outputAliases);
      const right = this.havingOperand(e.rexpr, outputAliases);
      return left && right ? { kind: "compare", op, left, right } : opaque();
    }
    if (e.kind === "AEXPR_BETWEEN" || e.kind === "AEXPR_NOT_BETWEEN") {
      const items = (e.rexpr?.List?.items ?? []) as PgNode[];
      const operand = this.havingOperand(e.lexpr, outputAliases);
      const low = this.havingOperand(items[0], outputAliases);
      const high = this.havingOperand(items[1], outputAliases);
      return operand && low && high && items.length === 2 ? { kind: "between", negated: e.kind === "AEXPR_NOT_BETWEEN", operand, low, high } : opaque();
    }
    return opaque();
  }

  private havingOperand(node: PgNode | undefined, outputAliases: Map<string, number>): HavingOperand | undefined {
    if (!node) return undefined;
    if (node.FuncCall) {
      const aggregate = aggregateOf(node.FuncCall, this.dialect);
      if (!aggregate || node.FuncCall.location === undefined || node.FuncCall.location < 0) return undefined;
      return { kind: "aggregate", aggregate, text: printExpr(node, this.dialect), offset: this.parsed.originalOffset(node.FuncCall.location) };
    }
    const fields = node.ColumnRef?.fields as PgNode[] | undefined;
    if (fields) {
      // SQLite lets HAVING name an output alias; PostgreSQL reads the name as an input column.
      const name = str(fields[0]) ?? "";
      const index = fields.length === 1 && this.dialect === "sqlite" ? outputAliases.get(name) : undefined;
      return index === undefined ? undefined : { kind: "output", index, name };
    }
    const value = exprValue(node, this.dialect);
    return value.kind === "value" || value.kind === "param" ? value : undefined;
  }

  // ----- INSERT / UPDATE / DELETE

  private targetOccurrence(relation: PgNode, scope: Scope): Occurrence {
    const table = this.relationName(relation);
    this.tableSet.add(table);
    const occ: Occurrence = { table, alias: relation.alias?.aliasname ?? relation.relname, target: true, nested: false, conjuncts: [] };
    scope.occurrences.push(occ);
    this.occurrences.push(occ);
    return occ;
  }

  private returning(b: PgNode, scope: Scope): boolean {
    const list = (b.returningClause?.exprs ?? b.returningList) as PgNode[] | undefined;
    if (!list || list.length === 0) return false;
    for (const item of list) this.expr(item.ResTarget?.val, scope);
    return true;
  }

  private insert(b: PgNode): InsertInfo {
    const scope: Scope = { occurrences: [], parent: null, ctes: new Set() };
    if (b.withClause) this.withClause(b.withClause, scope);
    const occ = this.targetOccurrence(b.relation, scope);
    const table = occ.table!;
    const columns = b.cols ? ((b.cols as PgNode[]).map((c) => c.ResTarget.name as string)) : null;
    let rows: ExprValue[][] | null = null;
    const select = b.selectStmt?.SelectStmt as PgNode | undefined;
    if (select?.valuesLists && (!select.op || select.op === "SETOP_NONE") && !select.sortClause && !select.limitCount) {
      rows = (select.valuesLists as PgNode[]).map((list) =>
        ((list.List.items ?? []) as PgNode[]).map((item) => {
          const value = exprValue(item, this.dialect);
          if (value.kind === "expression") this.expr(item, { occurrences: [], parent: null, ctes: scope.ctes });
          return value;
        }),
      );
      const width = columns?.length;
      rows.forEach((row, i) => {
        if (width !== undefined && row.length !== width) {
          throw new SqlError("PARSE_ERROR", `VALUES row ${i + 1} has ${row.length} values but ${width} columns are listed`);
        }
      });
    } else if (select) {
      this.nesting++;
      try {
        this.select(select, { occurrences: [], parent: null, ctes: scope.ctes });
      } finally {
        this.nesting--;
      }
    }
    if (columns) for (const column of columns) this.write(table, column);
    else this.write(table, "*");
    const conflict = b.onConflictClause as PgNode | undefined;
    const conflictUpdateColumns: string[] = [];
    let conflictAction: InsertInfo["conflictAction"] = "none";
    if (conflict) {
      conflictAction = conflict.action === "ONCONFLICT_UPDATE" ? "update" : "nothing";
      const excluded: Occurrence = { table: null, alias: "excluded", target: false, nested: false, conjuncts: [] };
      const conflictScope: Scope = { occurrences: [occ, excluded], parent: null, ctes: scope.ctes };
      for (const elem of (conflict.infer?.indexElems ?? []) as PgNode[]) {
        if (elem.IndexElem?.name) this.read(table, elem.IndexElem.name);
        else this.expr(elem.IndexElem?.expr, conflictScope);
      }
      for (const target of (conflict.targetList ?? []) as PgNode[]) {
        conflictUpdateColumns.push(target.ResTarget.name);
        this.write(table, target.ResTarget.name);
        this.expr(target.ResTarget.val, conflictScope);
      }
      this.expr(conflict.whereClause, conflictScope);
      this.expr(conflict.infer?.whereClause, conflictScope);
    }
    const mode = this.parsed.sqliteConflict;
    if (mode) {
      conflictAction = mode;
      if (mode === "replace") this.write(table, "*"); // REPLACE deletes the conflicting row
    }
    const returning = this.returning(b, scope);
    return {
      table,
      columns,
      rows,
      onConflict: conflictAction === "nothing" || conflictAction === "update" || conflictAction === "replace" || conflictAction === "ignore",
      conflictAction,
      conflictUpdateColumns,
      returning,
    };
  }

  private update(b: PgNode): { table: string; setColumns: string[]; returning: boolean } {
    const scope: Scope = { occurrences: [], parent: null, ctes: new Set() };
    if (b.withClause) this.withClause(b.withClause, scope);
    const occ = this.targetOccurrence(b.relation, scope);
    for (const item of (b.fromClause ?? []) as PgNode[]) this.fromItem(item, scope);
    const setColumns: string[] = [];
    for (const target of (b.targetList ?? []) as PgNode[]) {
      const name: string = target.ResTarget.name;
      if (!setColumns.includes(name)) setColumns.push(name);
      this.write(occ.table!, name);
      this.expr(target.ResTarget.val, scope);
    }
    if (b.whereClause) {
      this.expr(b.whereClause, scope);
      const condition = this.condition(b.whereClause);
      for (const o of scope.occurrences) o.conjuncts.push(condition);
    }
    const returning = this.returning(b, scope);
    return { table: occ.table!, setColumns, returning };
  }

  private delete(b: PgNode): { table: string; returning: boolean } {
    const scope: Scope = { occurrences: [], parent: null, ctes: new Set() };
    if (b.withClause) this.withClause(b.withClause, scope);
    const occ = this.targetOccurrence(b.relation, scope);
    for (const item of (b.usingClause ?? []) as PgNode[]) this.fromItem(item, scope);
    this.write(occ.table!, "*");
    if (b.whereClause) {
      this.expr(b.whereClause, scope);
      const condition = this.condition(b.whereClause);
      for (const o of scope.occurrences) o.conjuncts.push(condition);
    }
    const returning = this.returning(b, scope);
    return { table: occ.table!, returning };
  }

  // ----- DDL

  private ddl(k: string, b: PgNode): DdlInfo {
    switch (k) {
      case "CreateStmt": {
        const table = this.relationName(b.relation);
        this.tableSet.add(table);
        this.write(table, "*");
        const columns: ColumnDef[] = [];
        let primaryKey: string[] = [];
        for (const element of (b.tableElts ?? []) as PgNode[]) {
          if (element.ColumnDef) {
            const def = this.columnDef(element.ColumnDef);
            columns.push(def);
            if (def.primaryKey) primaryKey = [def.name];
          } else if (element.Constraint?.contype === "CONSTR_PRIMARY") {
            primaryKey = ((element.Constraint.keys ?? []) as PgNode[]).map((key) => str(key)!);
          } else {
            this.expr(element, null);
          }
        }
        for (const column of columns) if (primaryKey.includes(column.name)) column.primaryKey = true;
        return { action: "create_table", table, columns, primaryKey, ifNotExists: !!b.if_not_exists };
      }
      case "CreateTableAsStmt": {
        const into = b.into?.rel as PgNode;
        const table = this.relationName(into);
        this.tableSet.add(table);
        this.write(table, "*");
        if (b.query?.SelectStmt) this.select(b.query.SelectStmt, null);
        return { action: "create_table", table, ifNotExists: !!b.if_not_exists };
      }
      case "DropStmt": {
        const objects = ((b.objects ?? []) as PgNode[]).map((o) => ((o.List?.items ?? []) as PgNode[]).map((i) => str(i)).join("."));
        if (b.removeType === "OBJECT_TABLE") {
          for (const table of objects) {
            this.tableSet.add(table);
            this.write(table, "*");
          }
          return { action: "drop_table", table: objects[0] ?? "", ifExists: !!b.missing_ok };
        }
        if (b.removeType === "OBJECT_INDEX") return { action: "drop_index", table: "", index: objects[0] ?? "", ifExists: !!b.missing_ok };
        return { action: "other", table: "" };
      }
      case "IndexStmt": {
        const table = this.relationName(b.relation);
        this.tableSet.add(table);
        const occ: Occurrence = { table, alias: b.relation.relname, target: true, nested: false, conjuncts: [] };
        const scope: Scope = { occurrences: [occ], parent: null, ctes: new Set() };
        for (const param of (b.indexParams ?? []) as PgNode[]) {
          if (param.IndexElem?.name) this.read(table, param.IndexElem.name);
          else this.expr(param.IndexElem?.expr, scope);
        }
        this.expr(b.whereClause, scope);
        const info: DdlInfo = { action: "create_index", table, ifNotExists: !!b.if_not_exists };
        if (b.idxname) info.index = b.idxname;
        return info;
      }
      case "AlterTableStmt": {
        const table = this.relationName(b.relation);
        this.tableSet.add(table);
        this.write(table, "*");
        const addedColumns: ColumnDef[] = [];
        for (const cmd of (b.cmds ?? []) as PgNode[]) {
          const c = cmd.AlterTableCmd;
          if (c?.subtype === "AT_AddColumn" && c.def?.ColumnDef) addedColumns.push(this.columnDef(c.def.ColumnDef));
          else this.expr(c?.def, null);
        }
        const info: DdlInfo = { action: "alter_table", table };
        if (addedColumns.length > 0) info.addedColumns = addedColumns;
        return info;
      }
      default: {
        // CREATE VIEW, CREATE TRIGGER, ...: treated as schema changes; tables inside are still recorded.
        this.expr({ [k]: b }, null);
        const relation = (b?.relation ?? b?.view) as PgNode | undefined;
        const table = relation?.relname ? this.relationName(relation) : "";
        if (table) {
          this.tableSet.add(table);
          this.write(table, "*");
        }
        return { action: "other", table };
      }
    }
  }

  private columnDef(def: PgNode): ColumnDef {
    let notNull = false;
    let primaryKey = false;
    for (const c of (def.constraints ?? []) as PgNode[]) {
      const type = c.Constraint?.contype;
      if (type === "CONSTR_NOTNULL") notNull = true;
      else if (type === "CONSTR_PRIMARY") {
        primaryKey = true;
        notNull = true;
      } else this.expr(c.Constraint?.raw_expr, null);
    }
    const column: ColumnDef = { name: def.colname, type: this.typeText(def.typeName), notNull, primaryKey };
    const collation = collationName(def.collClause) ?? ((def.constraints ?? []) as PgNode[]).map((c) => collationName(c.Constraint?.collClause)).find(Boolean);
    if (collation) column.collation = collation;
    return column;
  }

  /** The declared type exactly as written (the parser normalises INTEGER to int4, which loses SQLite affinity). */
  private typeText(typeName: PgNode | undefined): string {
    if (!typeName || typeName.location === undefined || typeName.location < 0) return "";
    const start = this.parsed.originalOffset(typeName.location);
    const tokens = this.parsed.body;
    let i = tokens.findIndex((t) => t.start >= start);
    if (i === -1) return "";
    const depth = tokens[i]!.depth;
    const first = tokens[i]!;
    let last: Token = first;
    let open = 0;
    for (; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t.type === "lparen") open++;
      if (open === 0 && (t.type === "comma" || t.type === "rparen")) break;
      if (open === 0 && t.type === "word" && TYPE_STOP_WORDS.has(t.text) && t !== first) break;
      if (t.type === "rparen") open--;
      last = t;
    }
    void depth;
    return this.parsed.sql.slice(first.start, last.end);
  }
}

const TYPE_STOP_WORDS = new Set([
  "constraint", "primary", "not", "null", "unique", "check", "default", "references", "collate", "generated",
  "autoincrement", "as",
]);

/** Whether an expression mentions (unqualified) one of `names`: an output alias standing for an aggregate. */
function referencesAlias(node: unknown, names: Set<string>): boolean {
  if (names.size === 0 || !node || typeof node !== "object") return false;
  if (Array.isArray(node)) return node.some((n) => referencesAlias(n, names));
  const obj = node as PgNode;
  const fields = obj.ColumnRef?.fields as PgNode[] | undefined;
  if (fields) return fields.length === 1 && names.has(str(fields[0]) ?? "");
  if (obj.SubLink) return false;
  for (const key in obj) if (key !== "location" && referencesAlias(obj[key], names)) return true;
  return false;
}

function collationName(clause: PgNode | undefined): string | undefined {
  const names = (clause?.collname ?? clause?.CollateClause?.collname) as PgNode[] | undefined;
  if (!names || names.length === 0) return undefined;
  return names.map((n) => str(n) ?? "").join(".").toLowerCase();
}

function isNullConst(node: PgNode): boolean {
  return !!node.A_Const?.isnull;
}

function joinType(jointype: string, hasCondition: boolean): JoinInfo["type"] {
  switch (jointype) {
    case "JOIN_LEFT":
      return "left";
    case "JOIN_RIGHT":
      return "right";
    case "JOIN_FULL":
      return "full";
    default:
      return hasCondition ? "inner" : "cross";
  }
}

function firstOccurrence(list: Occurrence[]): Occurrence | undefined {
  return list.find((o) => o.table);
}
function lastOccurrence(list: Occurrence[]): Occurrence | undefined {
  for (let i = list.length - 1; i >= 0; i--) if (list[i]!.table) return list[i];
  return undefined;
}

function firstTable(list: Occurrence[]): string {
  return list.find((o) => o.table)?.table ?? "";
}

function transactionAction(kind: string): Analysis["transaction"] {
  switch (kind) {
    case "TRANS_STMT_BEGIN":
    case "TRANS_STMT_START":
      return "begin";
    case "TRANS_STMT_COMMIT":
    case "TRANS_STMT_COMMIT_PREPARED":
      return "commit";
    case "TRANS_STMT_SAVEPOINT":
      return "savepoint";
    case "TRANS_STMT_RELEASE":
      return "release";
    case "TRANS_STMT_ROLLBACK_TO":
      return "rollback_to";
    default:
      return "rollback";
  }
}

/** Keeps the atoms of one occurrence (qualified with its alias, or unqualified); others say nothing about it. */
function resolveCondition(condition: RawCondition, occ: Occurrence): Condition {
  switch (condition.kind) {
    case "and":
    case "or": {
      const parts = condition.parts.map((p) => resolveCondition(p, occ));
      if (condition.kind === "and") {
        const useful = parts.filter((p) => p.kind !== "opaque");
        if (useful.length === 0) return { kind: "opaque" };
        return useful.length === 1 ? useful[0]! : { kind: "and", parts: useful };
      }
      if (parts.some((p) => p.kind === "opaque")) return { kind: "opaque" };
      return { kind: "or", parts };
    }
    case "opaque":
      return condition;
    default: {
      if (condition.qualifier !== null && condition.qualifier !== occ.alias) return { kind: "opaque" };
      const table = condition.qualifier === null ? null : occ.table;
      const { qualifier: _q, ...rest } = condition;
      void _q;
      return { ...rest, table } as Condition;
    }
  }
}

export function positionError(sql: string, offset: number, code: "UNSUPPORTED" | "PARSE_ERROR", message: string): SqlError {
  const position = positionOf(sql, offset);
  return new SqlError(code, `${message} (line ${position.line}, column ${position.column})`, position);
}
