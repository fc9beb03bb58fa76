import type { Aggregate, Analysis, Dialect, HavingCondition, HavingOperand, SqlValue } from "./types";
import { SqlError } from "./errors";
import { tokenize, type Token } from "./lexer";
import { analyze, checkParameterCount } from "./analyze";

/**
 * Rewrites work on the original text: they cut and splice token ranges, so everything they do not touch
 * (spelling, comments, dialect-specific syntax) is kept exactly, and `?` placeholders stay `?`. The new
 * parameter list follows the placeholders of the new text in order.
 */
export interface RewriteResult {
  sql: string;
  params: SqlValue[];
  /** For each `?` of the new text, the index of the original parameter it takes. */
  parameterIndexes: number[];
}

export interface RewriteOptions {
  dialect: Dialect;
  /** The statement's parameters (checked against its `?` count). */
  params: readonly SqlValue[];
}

type Piece = string | { from: number; to: number }; // token index range [from, to)

class Splicer {
  readonly body: Token[];
  constructor(readonly sql: string, readonly tokens: Token[]) {
    const end = tokens.findIndex((t) => t.type === "semicolon");
    this.body = end === -1 ? tokens : tokens.slice(0, end);
  }

  /** Token replacements applied when copying ranges (token index -> new text). */
  readonly replacements = new Map<number, string>();

  text(from: number, to: number): string {
    if (to <= from) return "";
    let out = "";
    let at = this.body[from]!.start;
    for (const [index, replacement] of [...this.replacements].sort((a, b) => a[0] - b[0])) {
      if (index < from || index >= to) continue;
      out += this.sql.slice(at, this.body[index]!.start) + replacement;
      at = this.body[index]!.end;
    }
    return out + this.sql.slice(at, this.body[to - 1]!.end);
  }

  build(pieces: Piece[], params: readonly SqlValue[]): RewriteResult {
    let sql = "";
    const parameterIndexes: number[] = [];
    for (const piece of pieces) {
      if (typeof piece === "string") {
        sql += piece;
        continue;
      }
      if (piece.to <= piece.from) continue;
      const text = this.text(piece.from, piece.to);
      if (sql.length > 0 && !/[\s(]$/.test(sql) && !/^[),]/.test(text)) sql += " ";
      sql += text;
      for (let i = piece.from; i < piece.to; i++) {
        const token = this.body[i]!;
        if (token.type === "param") parameterIndexes.push(token.param!);
      }
    }
    // Whatever follows the statement (a semicolon, a comment) stays.
    const last = this.body[this.body.length - 1];
    if (last) sql += this.sql.slice(last.end);
    return { sql, params: parameterIndexes.map((i) => params[i]!), parameterIndexes };
  }

  /** Index of the first token at `depth` 0 that is one of `words`, from `from`; -1 if none. */
  findWord(words: ReadonlySet<string> | string, from = 0, to = this.body.length): number {
    for (let i = from; i < to; i++) {
      const t = this.body[i]!;
      if (t.depth === 0 && t.type === "word" && (typeof words === "string" ? t.text === words : words.has(t.text))) return i;
    }
    return -1;
  }

  /** The index of the ")" closing the "(" at `open`. */
  closing(open: number): number {
    const depth = this.body[open]!.depth;
    for (let i = open + 1; i < this.body.length; i++) {
      const t = this.body[i]!;
      if (t.type === "rparen" && t.depth === depth) return i;
    }
    throw new SqlError("PARSE_ERROR", "unbalanced parentheses");
  }

  /** Splits [from, to) at depth-0 commas. */
  splitCommas(from: number, to: number): Array<[number, number]> {
    const items: Array<[number, number]> = [];
    let start = from;
    for (let i = from; i < to; i++) {
      const t = this.body[i]!;
      if (t.depth === 0 && t.type === "comma") {
        items.push([start, i]);
        start = i + 1;
      }
    }
    if (to > start) items.push([start, to]);
    return items;
  }
}

function prepare(sql: string, options: RewriteOptions & { analysis?: Analysis }): { analysis: Analysis; splicer: Splicer } {
  if (options.analysis && options.analysis.dialect !== options.dialect) throw new Error("the analysis given is for another dialect");
  const analysis = options.analysis ?? analyze(sql, { dialect: options.dialect });
  checkParameterCount(analysis, options.params);
  return { analysis, splicer: new Splicer(sql, tokenize(sql, options.dialect)) };
}

// ---------------------------------------------------------------------------------------------------------

/**
 * The INSERT with only the VALUES rows at `rowIndexes` (0-based, kept in the original order), and the
 * parameters those rows (and the rest of the statement) use. Used to split a multi-row INSERT per shard.
 */
export function splitInsert(sql: string, rowIndexes: readonly number[], options: RewriteOptions & { analysis?: Analysis }): RewriteResult {
  return splitInsertRows(sql, [rowIndexes], options)[0]!;
}

/**
 * `splitInsert` for several parts at once (one per shard), reading the statement once: part i is the INSERT
 * with the rows `parts[i]`. Pass the statement's `analysis` when you have it.
 */
export function splitInsertRows(sql: string, parts: ReadonlyArray<readonly number[]>, options: RewriteOptions & { analysis?: Analysis }): RewriteResult[] {
  const { analysis, splicer } = prepare(sql, options);
  const rows = analysis.insert?.rows;
  if (!rows) throw new SqlError("UNSUPPORTED", "splitInsert needs an INSERT ... VALUES statement");
  const values = splicer.findWord("values");
  if (values === -1) throw new SqlError("UNSUPPORTED", "VALUES keyword not found");
  const groups: Array<[number, number]> = [];
  let i = values + 1;
  for (;;) {
    const open = splicer.body[i];
    if (!open || open.type !== "lparen" || open.depth !== 0) break;
    const close = splicer.closing(i);
    groups.push([i, close + 1]);
    i = close + 1;
    const next = splicer.body[i];
    if (next?.type === "comma" && next.depth === 0) i++;
    else break;
  }
  if (groups.length !== rows.length) {
    throw new SqlError("UNSUPPORTED", `found ${groups.length} VALUES rows in the text but the parser found ${rows.length}`);
  }
  return parts.map((rowIndexes) => {
    const wanted = [...new Set(rowIndexes)].sort((a, b) => a - b);
    if (wanted.length === 0) throw new SqlError("UNSUPPORTED", "splitInsert needs at least one row");
    for (const index of wanted) {
      if (!Number.isInteger(index) || index < 0 || index >= rows.length) {
        throw new SqlError("UNSUPPORTED", `row index ${index} is out of range: the INSERT has ${rows.length} rows`);
      }
    }
    const pieces: Piece[] = [{ from: 0, to: values + 1 }];
    wanted.forEach((index, n) => {
      if (n > 0) pieces.push(",");
      pieces.push({ from: groups[index]![0], to: groups[index]![1] });
    });
    pieces.push({ from: i, to: splicer.body.length });
    return splicer.build(pieces, options.params);
  });
}

// ---------------------------------------------------------------------------------------------------------

const LIMIT_WORDS = new Set(["limit", "offset"]);
const AFTER_LIMIT = new Set(["limit", "offset", "for", "fetch"]);

/**
 * The SELECT with its top-level LIMIT / OFFSET replaced by `LIMIT newLimit` (no OFFSET): what each shard is
 * asked for when a scatter ORDER BY ... LIMIT l OFFSET o is merged (newLimit = o + l).
 */
export function widenLimit(sql: string, newLimit: number | bigint, options: RewriteOptions): RewriteResult {
  if (typeof newLimit === "number" ? !Number.isSafeInteger(newLimit) || newLimit < 0 : newLimit < 0n) {
    throw new SqlError("UNSUPPORTED", `new limit must be a non-negative integer, got ${String(newLimit)}`);
  }
  const { analysis, splicer } = prepare(sql, options);
  if (analysis.kind !== "select") throw new SqlError("UNSUPPORTED", "widenLimit needs a SELECT statement");
  if (splicer.findWord("fetch") !== -1) throw new SqlError("UNSUPPORTED", "FETCH FIRST is not supported by widenLimit: use LIMIT");
  const body = splicer.body;
  let first = splicer.findWord(LIMIT_WORDS);
  // A depth-0 LIMIT inside a parenthesised UNION arm is at depth > 0, so the first depth-0 one is the statement's.
  let end = first;
  if (first !== -1) {
    let i = first;
    while (i < body.length && i !== -1) {
      const t = body[i]!;
      if (!(t.depth === 0 && t.type === "word" && LIMIT_WORDS.has(t.text))) break;
      let j = i + 1;
      while (j < body.length && !(body[j]!.depth === 0 && body[j]!.type === "word" && AFTER_LIMIT.has(body[j]!.text))) j++;
      end = j;
      i = j;
    }
  } else {
    first = splicer.findWord("for");
    if (first === -1) first = body.length;
    end = first;
  }
  const pieces: Piece[] = [{ from: 0, to: first }, ` LIMIT ${String(newLimit)}`];
  if (end < body.length) pieces.push({ from: end, to: body.length });
  return splicer.build(pieces, options.params);
}

// ---------------------------------------------------------------------------------------------------------

export interface HiddenColumn {
  /** Text of the expression as written (for a hidden AVG: the SUM that replaces it). */
  expression: string;
  role: "avg_count" | "group_by" | "order_by" | "having";
  aggregate?: Aggregate;
  /** For a hidden AVG (`aggregate` "avg"): position of its hidden COUNT; the column itself holds the SUM. */
  countIndex?: number;
}

export type OutputColumn =
  /** Read the value at `index` (null after a `*`, whose width is only known at run time: pass through). */
  | { kind: "column"; index: number | null; aggregate?: Aggregate }
  /**
   * AVG: sum at `sumIndex`, count at `countIndex`; the merged value is Σsum / Σcount. `name` is the column name
   * the database would have given the AVG (the rewritten column is named after its SUM), unless it has an alias.
   */
  | { kind: "avg"; sumIndex: number; countIndex: number; name?: string };

/** A value in a HAVING condition after the rewrite: a position in the rewritten row, a literal or a `?`. */
export type MergeOperand = { kind: "column"; index: number } | { kind: "value"; value: SqlValue } | { kind: "param"; index: number };

/** The HAVING condition over positions of the rewritten row (AVG positions hold the SUM; see `hidden`). */
export type MergeCondition =
  | { kind: "and" | "or"; parts: MergeCondition[] }
  | { kind: "not"; part: MergeCondition }
  | { kind: "compare"; op: "=" | "<>" | "<" | "<=" | ">" | ">="; left: MergeOperand; right: MergeOperand }
  | { kind: "between"; negated: boolean; operand: MergeOperand; low: MergeOperand; high: MergeOperand }
  | { kind: "is_null"; negated: boolean; operand: MergeOperand };

export interface MergeRewrite extends RewriteResult {
  /** Columns prepended to the select list; the merger drops the first `hidden.length` columns of every row. */
  hidden: HiddenColumn[];
  /** Where each column of the original select list is found in a rewritten row. */
  outputs: OutputColumn[];
  /** ORDER BY keys as positions in a rewritten row. */
  orderBy: Array<{ index: number; descending: boolean; nullsFirst?: boolean }>;
  /** GROUP BY keys as positions in a rewritten row (empty unless aggregates are combined). */
  groupBy: number[];
  /** The HAVING clause removed from the statement, for the merger to apply to combined groups. */
  having?: MergeCondition;
}

export interface MergeRewriteOptions extends RewriteOptions {
  /**
   * true: the merger combines partial aggregates, so AVG becomes SUM plus a hidden COUNT, GROUP BY keys that
   * are not output columns are hidden, and HAVING is removed (its aggregates hidden; see `having`).
   * false: every shard's rows are already final (groups live on one shard); only ORDER BY keys are hidden.
   * @default true
   */
  combineAggregates?: boolean;
  /** A number: `LIMIT n` and no OFFSET on each shard; null: no LIMIT or OFFSET; undefined: kept as written. */
  limit?: number | bigint | null;
  /** The analysis of `sql` in this dialect, when the caller has it (saves analysing it again). */
  analysis?: Analysis;
}

const SELECT_LIST_END = new Set(["from", "where", "group", "having", "window", "order", "limit", "offset", "union", "intersect", "except", "for", "fetch"]);
const ORDER_ITEM_END = new Set(["limit", "offset", "for", "fetch"]);
const GROUP_ITEM_END = new Set(["having", "window", "order", "limit", "offset", "for", "fetch"]);
const HAVING_END = new Set(["window", "order", "limit", "offset", "for", "fetch"]);
const SORT_WORDS = new Set(["asc", "desc", "first", "last", "nulls"]);

/** `expandAvg` is `rewriteForMerge` with its defaults (kept under its first name). */
export function expandAvg(sql: string, options: MergeRewriteOptions): MergeRewrite {
  return rewriteForMerge(sql, options);
}

/**
 * Prepares a SELECT for scatter-gather. With `combineAggregates` (the default): AVG(x) becomes SUM(x) in place
 * plus a hidden COUNT(x); GROUP BY keys that are not output columns become hidden columns; HAVING is removed
 * and its aggregates become hidden columns. Always: ORDER BY keys that are not output columns become hidden
 * columns, and LIMIT / OFFSET are set as `limit` says. Hidden columns go first, so their positions are known
 * even when the select list has a `*`. Refuses (UNSUPPORTED) what it cannot rewrite safely: UNION, DISTINCT
 * that a hidden column would change, AVG(DISTINCT), AVG with FILTER / OVER, aggregates after a `*`, HAVING
 * that is not comparisons of COUNT/SUM/MIN/MAX/AVG with literals, ORDER BY an expression of aggregates.
 */
export function rewriteForMerge(sql: string, options: MergeRewriteOptions): MergeRewrite {
  const combine = options.combineAggregates ?? true;
  const { analysis, splicer } = prepare(sql, options);
  const shape = analysis.select;
  if (!shape) throw new SqlError("UNSUPPORTED", "a merge rewrite needs a SELECT statement");
  if (shape.hasUnion) throw new SqlError("UNSUPPORTED", "UNION / INTERSECT / EXCEPT cannot be rewritten for merging");
  if (options.limit !== undefined && options.limit !== null) {
    const n = options.limit;
    if (typeof n === "number" ? !Number.isSafeInteger(n) || n < 0 : n < 0n) {
      throw new SqlError("UNSUPPORTED", `new limit must be a non-negative integer, got ${String(n)}`);
    }
  }
  const body = splicer.body;
  const select = splicer.findWord("select");
  if (select === -1) throw new SqlError("UNSUPPORTED", "SELECT keyword not found");
  let listStart = select + 1;
  const modifier = body[listStart];
  if (modifier?.type === "word" && (modifier.text === "distinct" || modifier.text === "all")) {
    listStart++;
    const on = body[listStart];
    if (modifier.text === "distinct" && on?.type === "word" && on.text === "on") {
      throw new SqlError("UNSUPPORTED", "DISTINCT ON cannot be merged across shards");
    }
  }
  let listEnd = splicer.findWord(SELECT_LIST_END, listStart);
  if (listEnd === -1) listEnd = body.length;
  const items = splicer.splitCommas(listStart, listEnd);
  if (items.length !== shape.columns.length) {
    throw new SqlError("UNSUPPORTED", `select list has ${items.length} items in the text but ${shape.columns.length} in the parse tree`);
  }
  const firstStar = shape.columns.findIndex((c) => c.isStar);
  const afterStar = (i: number): boolean => firstStar !== -1 && i >= firstStar;

  const hidden: Array<HiddenColumn & { piece: Piece[] }> = [];
  const itemPieces: Piece[][] = items.map(([from, to]) => [{ from, to }]);
  const avgHidden = new Map<number, number>();
  const avgNames = new Map<number, string>();

  /** The argument range of `avg(...)` starting at token `from`, refusing FILTER / OVER / DISTINCT. */
  const avgArgument = (from: number, what: string): { open: number; close: number } => {
    const name = body[from];
    const open = body[from + 1];
    if (name?.type !== "word" || name.text !== "avg" || open?.type !== "lparen") throw new SqlError("UNSUPPORTED", `cannot rewrite AVG in ${what}`);
    const close = splicer.closing(from + 1);
    const after = body[close + 1];
    if (after?.type === "word" && (after.text === "filter" || after.text === "over")) {
      throw new SqlError("UNSUPPORTED", `cannot rewrite AVG(...) followed by FILTER or OVER in ${what}`);
    }
    return { open: from + 1, close };
  };
  /** Hides AVG(arg) as SUM(arg) plus COUNT(arg); returns the position of the SUM. */
  const hideAvg = (from: number, what: string, role: HiddenColumn["role"]): number => {
    const { open, close } = avgArgument(from, what);
    const countIndex = hidden.length;
    hidden.push({ expression: `COUNT(${splicer.text(open + 1, close)})`, role: "avg_count", aggregate: "count", piece: ["COUNT(", { from: open + 1, to: close }, ")"] });
    const sumIndex = hidden.length;
    hidden.push({ expression: `SUM(${splicer.text(open + 1, close)})`, role, aggregate: "avg", countIndex, piece: ["SUM(", { from: open + 1, to: close }, ")"] });
    return sumIndex;
  };

  shape.columns.forEach((column, i) => {
    if (column.aggregate && afterStar(i) && !column.isStar) {
      throw new SqlError("UNSUPPORTED", `aggregate column ${i + 1} follows a * in the select list: list the columns instead`);
    }
    if (!combine || column.aggregate !== "avg") return;
    const [from, to] = items[i]!;
    const { open, close } = avgArgument(from, `select column ${i + 1}`);
    const rest = body.slice(close + 1, to);
    const aliasOnly = rest.length === 0 || (rest.length === 1 && (rest[0]!.type === "word" || rest[0]!.type === "quoted")) ||
      (rest.length === 2 && rest[0]!.type === "word" && rest[0]!.text === "as");
    if (!aliasOnly) throw new SqlError("UNSUPPORTED", `cannot rewrite AVG(...) followed by FILTER or OVER in select column ${i + 1}`);
    // SQLite names an unaliased expression column by its text; PostgreSQL by the function name.
    if (rest.length === 0) avgNames.set(i, options.dialect === "sqlite" ? splicer.text(from, to) : "avg");
    itemPieces[i] = ["SUM(", { from: open + 1, to: close }, ")", { from: close + 1, to }];
    avgHidden.set(i, hidden.length);
    hidden.push({ expression: `COUNT(${splicer.text(open + 1, close)})`, role: "avg_count", aggregate: "count", piece: ["COUNT(", { from: open + 1, to: close }, ")"] });
  });

  // GROUP BY keys
  const groupItemRanges: Array<[number, number]> = [];
  const orderItemRanges: Array<[number, number]> = [];
  const groupPositions: Array<{ hidden: number } | { output: number }> = [];
  const group = shape.groupBy.length > 0 ? splicer.findWord("group", listEnd) : -1;
  if (shape.groupBy.length > 0) {
    let end = splicer.findWord(GROUP_ITEM_END, group + 2);
    if (end === -1) end = body.length;
    const groupItems = splicer.splitCommas(group + 2, end);
    if (groupItems.length !== shape.groupBy.length) throw new SqlError("UNSUPPORTED", "cannot match GROUP BY items to the text");
    groupItemRanges.push(...groupItems);
    if (combine) {
      shape.groupByOutputIndex.forEach((outputIndex, g) => {
        if (outputIndex !== null && !afterStar(outputIndex)) {
          groupPositions.push({ output: outputIndex });
          return;
        }
        const [from, to] = groupItems[g]!;
        groupPositions.push({ hidden: hidden.length });
        hidden.push({ expression: splicer.text(from, to), role: "group_by", piece: [{ from, to }] });
      });
    }
  }

  // HAVING: removed, its aggregates hidden
  const cuts: Array<{ from: number; to: number; text: string }> = [];
  let having: MergeCondition | undefined;
  if (combine && shape.having) {
    const at = splicer.findWord("having", listEnd);
    if (at === -1 || !shape.havingCondition) throw new SqlError("UNSUPPORTED", "cannot find the HAVING clause in the text");
    let end = splicer.findWord(HAVING_END, at + 1);
    if (end === -1) end = body.length;
    cuts.push({ from: at, to: end, text: "" });
    const operand = (o: HavingOperand): MergeOperand => {
      switch (o.kind) {
        case "value":
        case "param":
          return o;
        case "output":
          if (afterStar(o.index)) throw new SqlError("UNSUPPORTED", `HAVING names output column "${o.name}", which follows a *`);
          return { kind: "column", index: -1 - o.index }; // resolved below, once the hidden count is known
        case "aggregate": {
          if (o.aggregate !== "count" && o.aggregate !== "sum" && o.aggregate !== "min" && o.aggregate !== "max" && o.aggregate !== "avg") {
            throw new SqlError("UNSUPPORTED", `HAVING uses ${o.text}, which cannot be combined across shards (only COUNT, SUM, MIN, MAX, AVG)`);
          }
          const from = body.findIndex((t) => t.start === o.offset);
          if (from === -1 || body[from + 1]?.type !== "lparen") throw new SqlError("UNSUPPORTED", `cannot find ${o.text} of HAVING in the text`);
          if (o.aggregate === "avg") return { kind: "column", index: hideAvg(from, "HAVING", "having") };
          let to = splicer.closing(from + 1) + 1;
          if (body[to]?.type === "word" && body[to]!.text === "filter" && body[to + 1]?.type === "lparen") to = splicer.closing(to + 1) + 1;
          const index = hidden.length;
          hidden.push({ expression: splicer.text(from, to), role: "having", aggregate: o.aggregate, piece: [{ from, to }] });
          return { kind: "column", index };
        }
      }
    };
    const convert = (c: HavingCondition): MergeCondition => {
      switch (c.kind) {
        case "and":
        case "or":
          return { kind: c.kind, parts: c.parts.map(convert) };
        case "not":
          return { kind: "not", part: convert(c.part) };
        case "compare":
          return { kind: "compare", op: c.op, left: operand(c.left), right: operand(c.right) };
        case "between":
          return { kind: "between", negated: c.negated, operand: operand(c.operand), low: operand(c.low), high: operand(c.high) };
        case "is_null":
          return { kind: "is_null", negated: c.negated, operand: operand(c.operand) };
        case "opaque":
          throw new SqlError("UNSUPPORTED", `HAVING ${c.text} cannot be evaluated by the merger (it compares COUNT, SUM, MIN, MAX, AVG and output aliases with literals and ?)`);
      }
    };
    having = convert(shape.havingCondition);
  }

  // ORDER BY keys
  const orderPositions: Array<{ hidden: number } | { output: number }> = [];
  if (shape.orderBy.length > 0) {
    let order = -1;
    for (let i = body.length - 1; i >= listEnd; i--) {
      const t = body[i]!;
      if (t.depth === 0 && t.type === "word" && t.text === "order" && body[i + 1]?.text === "by") {
        order = i;
        break;
      }
    }
    let end = splicer.findWord(ORDER_ITEM_END, order + 2);
    if (end === -1) end = body.length;
    const orderItems = splicer.splitCommas(order + 2, end);
    if (order === -1 || orderItems.length !== shape.orderBy.length) throw new SqlError("UNSUPPORTED", "cannot match ORDER BY items to the text");
    orderItemRanges.push(...orderItems);
    shape.orderBy.forEach((item, o) => {
      if (item.outputIndex !== null && !afterStar(item.outputIndex)) {
        orderPositions.push({ output: item.outputIndex });
        return;
      }
      if (shape.distinct) {
        throw new SqlError("UNSUPPORTED", `SELECT DISTINCT ordered by "${item.expression}", which is not an output column, cannot be merged`);
      }
      let [from, to] = orderItems[o]!;
      // Drop ASC / DESC / NULLS FIRST|LAST from the key expression.
      while (to > from && body[to - 1]!.type === "word" && SORT_WORDS.has(body[to - 1]!.text)) to--;
      if (item.outputIndex !== null) {
        // An output column after a `*`: hide a copy of its expression (without its alias).
        const [cf, ct] = items[item.outputIndex]!;
        let cto = ct;
        if (cto - cf >= 2 && body[cto - 2]?.type === "word" && body[cto - 2]!.text === "as") cto -= 2;
        from = cf;
        to = cto;
      }
      if (combine && item.aggregate === "avg") {
        orderPositions.push({ hidden: hideAvg(from, `ORDER BY item ${o + 1}`, "order_by") });
        return;
      }
      if (combine && item.aggregate && item.aggregate !== "count" && item.aggregate !== "sum" && item.aggregate !== "min" && item.aggregate !== "max") {
        throw new SqlError("UNSUPPORTED", `ORDER BY ${item.expression} cannot be combined across shards (only COUNT, SUM, MIN, MAX, AVG calls)`);
      }
      orderPositions.push({ hidden: hidden.length });
      const entry: HiddenColumn & { piece: Piece[] } = { expression: splicer.text(from, to), role: "order_by", piece: [{ from, to }] };
      if (item.aggregate) entry.aggregate = item.aggregate;
      hidden.push(entry);
    });
  }

  // LIMIT / OFFSET
  if (options.limit !== undefined) {
    const words = new Set(["limit", "offset"]);
    const after = new Set(["limit", "offset", "for", "fetch"]);
    if (splicer.findWord("fetch", listEnd) !== -1) throw new SqlError("UNSUPPORTED", "FETCH FIRST cannot be rewritten: use LIMIT");
    const first = splicer.findWord(words, listEnd);
    const text = options.limit === null ? "" : ` LIMIT ${String(options.limit)}`;
    if (first === -1) {
      let at = splicer.findWord("for", listEnd);
      if (at === -1) at = body.length;
      if (text) cuts.push({ from: at, to: at, text });
    } else {
      let end = first;
      while (end < body.length && body[end]!.depth === 0 && body[end]!.type === "word" && words.has(body[end]!.text)) {
        let j = end + 1;
        while (j < body.length && !(body[j]!.depth === 0 && body[j]!.type === "word" && after.has(body[j]!.text))) j++;
        end = j;
      }
      cuts.push({ from: first, to: end, text });
    }
  }

  const h = hidden.length;
  if (h > 0) {
    // GROUP BY 1 / ORDER BY 2 count select-list positions, which the prepended hidden columns shift.
    for (const [from, to] of [...groupItemRanges, ...orderItemRanges]) {
      const t = body[from]!;
      if (t.type === "number" && /^\d+$/.test(t.text) && (to - from === 1 || body[from + 1]!.type === "word")) {
        splicer.replacements.set(from, String(Number(t.text) + h));
      }
    }
  }
  const position = (p: { hidden: number } | { output: number }): number => ("hidden" in p ? p.hidden : h + p.output);
  const outputs: OutputColumn[] = shape.columns.map((column, i) => {
    if (combine && column.aggregate === "avg") {
      const name = avgNames.get(i);
      return { kind: "avg", sumIndex: h + i, countIndex: avgHidden.get(i)!, ...(name === undefined ? {} : { name }) };
    }
    const out: OutputColumn = { kind: "column", index: afterStar(i) ? null : h + i };
    if (column.aggregate) out.aggregate = column.aggregate;
    return out;
  });
  const resolveOutputs = (c: MergeCondition): MergeCondition => {
    const fix = (o: MergeOperand): MergeOperand => (o.kind === "column" && o.index < 0 ? { kind: "column", index: h + (-1 - o.index) } : o);
    switch (c.kind) {
      case "and":
      case "or":
        return { kind: c.kind, parts: c.parts.map(resolveOutputs) };
      case "not":
        return { kind: "not", part: resolveOutputs(c.part) };
      case "compare":
        return { ...c, left: fix(c.left), right: fix(c.right) };
      case "between":
        return { ...c, operand: fix(c.operand), low: fix(c.low), high: fix(c.high) };
      case "is_null":
        return { ...c, operand: fix(c.operand) };
    }
  };

  const pieces: Piece[] = [{ from: 0, to: listStart }];
  hidden.forEach((column, n) => {
    pieces.push(n === 0 ? " " : ", ", ...column.piece);
  });
  itemPieces.forEach((item, n) => {
    pieces.push(n === 0 && h === 0 ? " " : ", ", ...item);
  });
  let at = listEnd;
  for (const cut of cuts.sort((a, b) => a.from - b.from)) {
    pieces.push({ from: at, to: cut.from });
    if (cut.text) pieces.push(cut.text);
    at = cut.to;
  }
  pieces.push({ from: at, to: body.length });
  const result = splicer.build(pieces, options.params);
  const rewrite: MergeRewrite = {
    ...result,
    hidden: hidden.map(({ piece: _piece, ...column }) => column),
    outputs,
    orderBy: shape.orderBy.map((item, o) => {
      const entry: { index: number; descending: boolean; nullsFirst?: boolean } = { index: position(orderPositions[o]!), descending: item.descending };
      if (item.nullsFirst !== undefined) entry.nullsFirst = item.nullsFirst;
      return entry;
    }),
    groupBy: groupPositions.map(position),
  };
  if (having) rewrite.having = resolveOutputs(having);
  return rewrite;
}
