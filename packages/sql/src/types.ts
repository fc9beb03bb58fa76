/** The two SQL dialects Mycelium stores data in. `?` is the parameter syntax in both. */
export type Dialect = "sqlite" | "postgres";

/** A parameter or literal value. Integers that do not fit a double are bigint; blobs are Uint8Array. */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

export type StatementKind = "select" | "insert" | "update" | "delete" | "ddl" | "other";

/** A column of a table. `column` is "*" for "every column" (SELECT *, DELETE, DDL). */
export interface ColumnRef {
  table: string;
  column: string;
}

/**
 * A value position in a statement: a literal, a `?` placeholder (0-based index into the parameters),
 * DEFAULT (INSERT only), or any other expression (kept as canonical text; never evaluated here).
 */
export type ExprValue =
  | { kind: "value"; value: SqlValue }
  | { kind: "param"; index: number }
  | { kind: "default" }
  | { kind: "expression"; text: string };

export type Aggregate = "count" | "sum" | "min" | "max" | "avg" | "count_distinct" | "other";

export interface SelectColumn {
  /** Output column name: the alias, else the column name, else the function name, else "?column?". */
  name: string;
  /** Canonical text of the expression (lower-case keywords and names, literals as written). */
  expression: string;
  /** Set when the whole column is one aggregate call. */
  aggregate?: Aggregate;
  isStar: boolean;
}

export interface OrderByItem {
  expression: string;
  descending: boolean;
  /** Set only when NULLS FIRST / NULLS LAST is written. */
  nullsFirst?: boolean;
  /** Position in the select list when the ORDER BY item is an output column (by alias, position or same expression). */
  outputIndex: number | null;
  /** Set when the ORDER BY expression is an aggregate call ("other" when it merely contains one). */
  aggregate?: Aggregate;
}

/** What a router / merger needs to know about a SELECT. */
export interface SelectShape {
  columns: SelectColumn[];
  distinct: boolean;
  /** Canonical text of the GROUP BY expressions (positions and aliases resolved to the select-list expression). */
  groupBy: string[];
  /** For each GROUP BY item, its position in the select list, or null when it is not an output column. */
  groupByOutputIndex: Array<number | null>;
  having: boolean;
  /** The HAVING clause as a condition a merger can evaluate on combined groups (set when `having`). */
  havingCondition?: HavingCondition;
  orderBy: OrderByItem[];
  /** LIMIT / OFFSET as written: a literal, a parameter, or an expression. Resolve with `resolveValue`. */
  limit: ExprValue | null;
  offset: ExprValue | null;
  hasSubquery: boolean;
  hasWindow: boolean;
  hasUnion: boolean;
  /** Any aggregate anywhere in the select list, HAVING or ORDER BY. */
  hasAggregate: boolean;
  /** Tables of the top-level FROM clause, in order. */
  from: string[];
}

export interface ColumnDef {
  name: string;
  /** The declared type as written ("INTEGER", "VARCHAR(20)"), or "" when none (SQLite allows that). */
  type: string;
  notNull: boolean;
  primaryKey: boolean;
  /** The declared COLLATE name, lower-cased, when one is written ("nocase", "c"). */
  collation?: string;
}

export type DdlAction = "create_table" | "drop_table" | "alter_table" | "create_index" | "drop_index" | "other";

export interface DdlInfo {
  action: DdlAction;
  table: string;
  columns?: ColumnDef[];
  primaryKey?: string[];
  ifNotExists?: boolean;
  ifExists?: boolean;
  /** For create_index / drop_index. */
  index?: string;
  /** For alter_table: the columns added by ADD COLUMN. */
  addedColumns?: ColumnDef[];
}

export interface InsertInfo {
  table: string;
  /** The column list as written (lower-cased unless quoted), or null when omitted (all columns in table order). */
  columns: string[] | null;
  /** VALUES rows, or null for INSERT ... SELECT / DEFAULT VALUES. */
  rows: ExprValue[][] | null;
  /** ON CONFLICT (both dialects), INSERT OR REPLACE/IGNORE, REPLACE INTO. */
  onConflict: boolean;
  /** What happens on conflict, when known. */
  conflictAction: "none" | "nothing" | "update" | "replace" | "ignore" | "abort" | "fail" | "rollback";
  /** Columns assigned by ON CONFLICT DO UPDATE SET. */
  conflictUpdateColumns: string[];
  returning: boolean;
}

export interface UpdateInfo {
  table: string;
  setColumns: string[];
  returning: boolean;
}

export interface DeleteInfo {
  table: string;
  returning: boolean;
}

/** A column of one table occurrence: `occurrence` indexes `Analysis.occurrences`. */
export interface JoinColumn extends ColumnRef {
  occurrence: number;
}

/** A join between two table occurrences and the column pairs it equates (ON / USING / WHERE). */
export interface JoinInfo {
  type: "inner" | "left" | "right" | "full" | "cross";
  left: string;
  right: string;
  /** Pairs [leftColumn, rightColumn] equated by the join (and by WHERE equalities between the two tables). */
  on: Array<[JoinColumn, JoinColumn]>;
  /** USING / NATURAL. */
  using: boolean;
  /** The occurrences (indexes into `Analysis.occurrences`) on each side of the join. */
  leftOccurrences: number[];
  rightOccurrences: number[];
}

/**
 * One side of a HAVING comparison: an aggregate call (`offset` is where its function name starts in the
 * statement text), an output column named by its alias (SQLite only; PostgreSQL has no aliases in HAVING),
 * or a literal / `?`.
 */
export type HavingOperand =
  | { kind: "aggregate"; aggregate: Aggregate; text: string; offset: number }
  | { kind: "output"; index: number; name: string }
  | { kind: "value"; value: SqlValue }
  | { kind: "param"; index: number };

/** A HAVING clause in the shape a merger can evaluate; `opaque` is anything else (the merger must refuse it). */
export type HavingCondition =
  | { kind: "and" | "or"; parts: HavingCondition[] }
  | { kind: "not"; part: HavingCondition }
  | { kind: "compare"; op: "=" | "<>" | "<" | "<=" | ">" | ">="; left: HavingOperand; right: HavingOperand }
  | { kind: "between"; negated: boolean; operand: HavingOperand; low: HavingOperand; high: HavingOperand }
  | { kind: "is_null"; negated: boolean; operand: HavingOperand }
  | { kind: "opaque"; text: string };

/**
 * A row restriction in the shape the shard-key predicate needs. Column references are resolved to the table
 * occurrence (`table` is null for an unqualified column in a scope with several tables: it names a column of
 * whichever table has it). Anything not understood is `opaque` (no restriction).
 */
export type Condition =
  | { kind: "and"; parts: Condition[] }
  | { kind: "or"; parts: Condition[] }
  | { kind: "compare"; table: string | null; column: string; op: "=" | "<" | "<=" | ">" | ">="; value: ExprValue }
  | { kind: "in"; table: string | null; column: string; values: ExprValue[] }
  | { kind: "between"; table: string | null; column: string; low: ExprValue; high: ExprValue }
  | { kind: "opaque" };

/** One appearance of a table in the statement with the restriction that every row it contributes satisfies. */
export interface TableOccurrence {
  table: string;
  /** The name columns are qualified with: the alias, else the table name. */
  alias: string;
  restriction: Condition;
  /** The statement's target table (INSERT/UPDATE/DELETE) rather than a table read from. */
  target: boolean;
  /** Inside a subquery, a derived table, a CTE or a set-operation arm rather than the top-level FROM. */
  nested: boolean;
}

export interface Analysis {
  kind: StatementKind;
  dialect: Dialect;
  /** Statement shape: literals replaced by `?`, whitespace and case normalised. */
  fingerprint: string;
  /** Every table referenced, lower-cased unless quoted, in order of first appearance, without duplicates. */
  tables: string[];
  ddl?: DdlInfo;
  readSet: ColumnRef[];
  writeSet: ColumnRef[];
  parameterCount: number;
  isWrite: boolean;
  /** Nondeterministic functions and values found anywhere in the statement (caller rejects them in writes). */
  nondeterministic: string[];
  select?: SelectShape;
  insert?: InsertInfo;
  update?: UpdateInfo;
  delete?: DeleteInfo;
  joins: JoinInfo[];
  /** Every table occurrence with its row restriction; `shardKeyPredicate` reads these. */
  occurrences: TableOccurrence[];
  /** Transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT...), when kind is "other". */
  transaction?: "begin" | "commit" | "rollback" | "savepoint" | "release" | "rollback_to";
}

export interface KeyRange {
  /** Missing bound = unbounded on that side. */
  lower?: { value: SqlValue; inclusive: boolean };
  upper?: { value: SqlValue; inclusive: boolean };
}

/**
 * The shard-key values a statement can touch. Never excludes a value that could match (soundness).
 * Values are the literals / parameters as written: the router must apply the key column's type conversion
 * (e.g. SQLite affinity: '5' = 5 for an INTEGER column) exactly as it does for INSERT values before hashing.
 */
export type KeyPredicate =
  | { kind: "all" }
  | { kind: "none" }
  | { kind: "points"; values: SqlValue[][] }
  | { kind: "ranges"; ranges: KeyRange[] };
