import type { Analysis, Condition, ExprValue, KeyPredicate, KeyRange, SqlValue } from "./types";
import { SqlError } from "./errors";
import { compareValues, resolveValue, valueKey } from "./values";

/** Above this many tuples a multi-column AND gives up and answers "all" (sound, bounded work). */
const MAX_TUPLES = 4096;

/**
 * The shard-key values of `table` the statement can touch, under parameters `params`.
 *
 * Soundness: a row of `table` that the statement could read or write has a key inside the predicate. Each
 * occurrence of the table (self-joins, subqueries) contributes the union of what it can touch. Anything not
 * understood (NOT, LIKE, functions of the key, comparisons with other columns, subqueries) is "all".
 * Single-column keys get exact points and ranges; multi-column keys get tuple points when every key column is
 * fixed by equality / IN, otherwise "all".
 */
export function shardKeyPredicate(
  analysis: Analysis,
  table: string,
  keyColumns: readonly string[],
  params: readonly SqlValue[],
): KeyPredicate {
  if (keyColumns.length === 0) throw new SqlError("UNSUPPORTED", `table "${table}" has no shard key columns`);
  if (analysis.kind === "ddl" || analysis.kind === "other") return { kind: "all" };
  const parts: KeyPredicate[] = [];
  for (const occ of analysis.occurrences) {
    if (occ.table !== table) continue;
    if (occ.target && analysis.kind === "insert") {
      parts.push(insertPredicate(analysis, keyColumns, params));
      continue;
    }
    parts.push(conditionPredicate(occ.restriction, table, keyColumns, params));
  }
  if (parts.length === 0) return { kind: "none" };
  return unionPredicates(parts);
}

/**
 * The shard-key values one table occurrence (an index into `analysis.occurrences`) can touch: what a router
 * intersects across the tables of a join on equal shard keys.
 */
export function occurrenceKeyPredicate(
  analysis: Analysis,
  occurrence: number,
  keyColumns: readonly string[],
  params: readonly SqlValue[],
): KeyPredicate {
  const occ = analysis.occurrences[occurrence];
  if (!occ) throw new RangeError(`occurrence ${occurrence} does not exist (the statement has ${analysis.occurrences.length})`);
  if (keyColumns.length === 0) throw new SqlError("UNSUPPORTED", `table "${occ.table}" has no shard key columns`);
  if (analysis.kind === "ddl" || analysis.kind === "other") return { kind: "all" };
  if (occ.target && analysis.kind === "insert") return insertPredicate(analysis, keyColumns, params);
  return conditionPredicate(occ.restriction, occ.table, keyColumns, params);
}

/**
 * The shard-key tuple of every VALUES row of an INSERT, in row order. `tableColumns` (the table's columns in
 * order) is needed when the INSERT has no column list. Throws UNSUPPORTED when a key value is not a literal or
 * parameter, or a key column is not given.
 */
export function insertRowKeys(
  analysis: Analysis,
  keyColumns: readonly string[],
  params: readonly SqlValue[],
  tableColumns?: readonly string[],
): SqlValue[][] {
  const insert = analysis.insert;
  if (!insert) throw new SqlError("UNSUPPORTED", "not an INSERT statement");
  if (!insert.rows) throw new SqlError("UNSUPPORTED", `INSERT INTO ${insert.table} ... SELECT has no literal rows to route`);
  const columns = insert.columns ?? tableColumns;
  if (!columns) throw new SqlError("UNSUPPORTED", `INSERT INTO ${insert.table} without a column list needs the table's columns`);
  const positions = keyColumns.map((key) => {
    const position = columns.indexOf(key);
    if (position === -1) throw new SqlError("UNSUPPORTED", `INSERT INTO ${insert.table} does not give shard key column "${key}"`);
    return position;
  });
  return insert.rows.map((row, r) =>
    positions.map((position, k) => {
      const expr = row[position];
      const value = expr ? resolveValue(expr, params) : undefined;
      if (value === undefined) {
        throw new SqlError(
          "UNSUPPORTED",
          `row ${r + 1} of INSERT INTO ${insert.table}: shard key "${keyColumns[k]}" must be a literal or ? parameter`,
        );
      }
      return value;
    }),
  );
}

function insertPredicate(analysis: Analysis, keyColumns: readonly string[], params: readonly SqlValue[]): KeyPredicate {
  let keys: SqlValue[][];
  try {
    keys = insertRowKeys(analysis, keyColumns, params);
  } catch (error) {
    if (error instanceof SqlError && error.code === "UNSUPPORTED") return { kind: "all" };
    throw error;
  }
  return pointsPredicate(keys);
}

function pointsPredicate(tuples: SqlValue[][]): KeyPredicate {
  const seen = new Set<string>();
  const values: SqlValue[][] = [];
  for (const tuple of tuples) {
    const key = tuple.map(valueKey).join("\u0000");
    if (seen.has(key)) continue;
    seen.add(key);
    values.push(tuple);
  }
  return values.length === 0 ? { kind: "none" } : { kind: "points", values };
}

function unionPredicates(parts: KeyPredicate[]): KeyPredicate {
  if (parts.length === 1) return parts[0]!;
  if (parts.some((p) => p.kind === "all")) return { kind: "all" };
  const useful = parts.filter((p) => p.kind !== "none");
  if (useful.length === 0) return { kind: "none" };
  if (useful.every((p) => p.kind === "points")) {
    return pointsPredicate(useful.flatMap((p) => (p.kind === "points" ? p.values : [])));
  }
  const ranges: KeyRange[] = [];
  for (const p of useful) {
    if (p.kind === "ranges") ranges.push(...p.ranges);
    else if (p.kind === "points") {
      if (p.values[0]!.length !== 1) return { kind: "all" };
      for (const [value] of p.values) ranges.push(pointRange(value!));
    }
  }
  return { kind: "ranges", ranges };
}

function matches(condition: { table: string | null; column: string }, table: string, column: string): boolean {
  // An unqualified column named like a key column of `table` is that column: `table` has it, so any other
  // table in the same scope having it too would make the statement ambiguous (an error in both databases).
  return condition.column === column && (condition.table === null || condition.table === table);
}

function conditionPredicate(condition: Condition, table: string, keyColumns: readonly string[], params: readonly SqlValue[]): KeyPredicate {
  if (keyColumns.length === 1) return toPredicate(evalSingle(condition, table, keyColumns[0]!, params));
  const tuples = evalTuples(condition, table, keyColumns, params);
  if (tuples === "all" || tuples.some((t) => t.some((v) => v === undefined))) return { kind: "all" };
  return pointsPredicate(tuples as SqlValue[][]);
}

// ---------------------------------------------------------------------------------------------------------
// Single-column keys: a union of intervals (a point is [v, v]), or ALL.

interface Bound {
  value: SqlValue;
  inclusive: boolean;
}
interface Interval {
  lower?: Bound;
  upper?: Bound;
}
type IntervalSet = "all" | Interval[];

function value(expr: ExprValue, params: readonly SqlValue[]): SqlValue {
  const resolved = resolveValue(expr, params);
  if (resolved === undefined) throw new Error("condition operands are literals or parameters");
  return resolved;
}

function evalSingle(condition: Condition, table: string, column: string, params: readonly SqlValue[]): IntervalSet {
  switch (condition.kind) {
    case "opaque":
      return "all";
    case "and": {
      let result: IntervalSet = "all";
      for (const part of condition.parts) result = intersect(result, evalSingle(part, table, column, params));
      return result;
    }
    case "or": {
      let result: IntervalSet = [];
      for (const part of condition.parts) {
        const next = evalSingle(part, table, column, params);
        if (next === "all") return "all";
        result = [...result, ...next];
      }
      return result;
    }
    case "compare": {
      if (!matches(condition, table, column)) return "all";
      const v = value(condition.value, params);
      if (v === null) return []; // a comparison with NULL is never true
      switch (condition.op) {
        case "=":
          return [pointRange(v) as Interval];
        case "<":
          return [{ upper: { value: v, inclusive: false } }];
        case "<=":
          return [{ upper: { value: v, inclusive: true } }];
        case ">":
          return [{ lower: { value: v, inclusive: false } }];
        case ">=":
          return [{ lower: { value: v, inclusive: true } }];
      }
      return "all";
    }
    case "in": {
      if (!matches(condition, table, column)) return "all";
      const out: Interval[] = [];
      for (const item of condition.values) {
        const v = value(item, params);
        if (v !== null) out.push(pointRange(v) as Interval);
      }
      return out;
    }
    case "between": {
      if (!matches(condition, table, column)) return "all";
      const low = value(condition.low, params);
      const high = value(condition.high, params);
      if (low === null || high === null) return [];
      return intersect([{ lower: { value: low, inclusive: true } }], [{ upper: { value: high, inclusive: true } }]);
    }
  }
}

function pointRange(v: SqlValue): KeyRange {
  return { lower: { value: v, inclusive: true }, upper: { value: v, inclusive: true } };
}

/** a ∩ b, or a superset of it when values of incomparable types meet (never a subset: soundness). */
function intersect(a: IntervalSet, b: IntervalSet): IntervalSet {
  if (a === "all") return b;
  if (b === "all") return a;
  const out: Interval[] = [];
  for (const x of a) {
    for (const y of b) {
      const z = intersectInterval(x, y);
      if (z === "incomparable") return a;
      if (z) out.push(z);
    }
  }
  return out;
}

function intersectInterval(x: Interval, y: Interval): Interval | null | "incomparable" {
  const lower = pickBound(x.lower, y.lower, 1);
  const upper = pickBound(x.upper, y.upper, -1);
  if (lower === "incomparable" || upper === "incomparable") return "incomparable";
  if (lower && upper) {
    const c = compareValues(lower.value, upper.value);
    if (c === undefined) return "incomparable";
    if (c > 0 || (c === 0 && !(lower.inclusive && upper.inclusive))) return null;
  }
  const result: Interval = {};
  if (lower) result.lower = lower;
  if (upper) result.upper = upper;
  return result;
}

/** The tighter of two bounds: the larger lower bound (direction 1) or the smaller upper bound (direction -1). */
function pickBound(a: Bound | undefined, b: Bound | undefined, direction: 1 | -1): Bound | undefined | "incomparable" {
  if (!a) return b;
  if (!b) return a;
  const c = compareValues(a.value, b.value);
  if (c === undefined) return "incomparable";
  if (c === 0) return { value: a.value, inclusive: a.inclusive && b.inclusive };
  return c * direction > 0 ? a : b;
}

function isPoint(interval: Interval): boolean {
  return !!interval.lower && !!interval.upper && interval.lower.inclusive && interval.upper.inclusive &&
    compareValues(interval.lower.value, interval.upper.value) === 0;
}

function toPredicate(set: IntervalSet): KeyPredicate {
  if (set === "all") return { kind: "all" };
  if (set.length === 0) return { kind: "none" };
  if (set.some((i) => !i.lower && !i.upper)) return { kind: "all" };
  if (set.every(isPoint)) return pointsPredicate(set.map((i) => [i.lower!.value]));
  const seen = new Set<string>();
  const ranges: KeyRange[] = [];
  for (const interval of set) {
    const key = `${interval.lower ? `${interval.lower.inclusive}${valueKey(interval.lower.value)}` : "-"}\u0000${interval.upper ? `${interval.upper.inclusive}${valueKey(interval.upper.value)}` : "+"}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const range: KeyRange = {};
    if (interval.lower) range.lower = interval.lower;
    if (interval.upper) range.upper = interval.upper;
    ranges.push(range);
  }
  return { kind: "ranges", ranges };
}

// ---------------------------------------------------------------------------------------------------------
// Multi-column keys: a union of tuples, `undefined` = any value in that position.

type Tuple = Array<SqlValue | undefined>;

function evalTuples(condition: Condition, table: string, keys: readonly string[], params: readonly SqlValue[]): Tuple[] | "all" {
  const wildcard = (): Tuple[] => [keys.map(() => undefined)];
  switch (condition.kind) {
    case "opaque":
      return "all";
    case "and": {
      let result: Tuple[] = wildcard();
      for (const part of condition.parts) {
        const next = evalTuples(part, table, keys, params);
        if (next === "all") continue;
        if (result.length * next.length > MAX_TUPLES) return "all";
        const merged: Tuple[] = [];
        for (const a of result) for (const b of next) {
          const m = mergeTuple(a, b);
          if (m) merged.push(m);
        }
        result = merged;
      }
      return result;
    }
    case "or": {
      const result: Tuple[] = [];
      for (const part of condition.parts) {
        const next = evalTuples(part, table, keys, params);
        if (next === "all") return "all";
        result.push(...next);
        if (result.length > MAX_TUPLES) return "all";
      }
      return result;
    }
    case "compare":
    case "in": {
      const position = keys.findIndex((k) => matches(condition, table, k));
      if (position === -1) return "all";
      if (condition.kind === "compare") {
        const v = value(condition.value, params);
        if (v === null) return [];
        if (condition.op !== "=") return "all";
        return [keys.map((_, i) => (i === position ? v : undefined))];
      }
      const out: Tuple[] = [];
      for (const item of condition.values) {
        const v = value(item, params);
        if (v !== null) out.push(keys.map((_, i) => (i === position ? v : undefined)));
      }
      return out;
    }
    case "between": {
      if (keys.findIndex((k) => matches(condition, table, k)) === -1) return "all";
      const low = value(condition.low, params);
      const high = value(condition.high, params);
      return low === null || high === null ? [] : "all";
    }
  }
}

function mergeTuple(a: Tuple, b: Tuple): Tuple | null {
  const out: Tuple = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) out.push(y);
    else if (y === undefined) out.push(x);
    else {
      const c = compareValues(x, y);
      if (c === undefined) out.push(x); // incomparable types: keep one (a superset), never drop
      else if (c !== 0) return null;
      else out.push(x);
    }
  }
  return out;
}
