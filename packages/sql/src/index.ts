export type {
  Aggregate,
  Analysis,
  ColumnDef,
  ColumnRef,
  Condition,
  DdlAction,
  DdlInfo,
  DeleteInfo,
  Dialect,
  ExprValue,
  HavingCondition,
  HavingOperand,
  InsertInfo,
  JoinColumn,
  JoinInfo,
  KeyPredicate,
  KeyRange,
  OrderByItem,
  SelectColumn,
  SelectShape,
  SqlValue,
  StatementKind,
  TableOccurrence,
  UpdateInfo,
} from "./types";
export { SqlError, type SqlErrorCode, type SqlPosition } from "./errors";
export { loadSqlParser, isSqlParserLoaded } from "./parser";
export { analyze, type AnalyzeOptions } from "./analyze";
export { assertDeterministic } from "./determinism";
export { shardKeyPredicate, occurrenceKeyPredicate, insertRowKeys } from "./predicate";
export { resolveValue, compareValues } from "./values";
export { toDialectSql, bindParameters } from "./dialect";
export {
  splitInsert,
  splitInsertRows,
  widenLimit,
  expandAvg,
  rewriteForMerge,
  type RewriteOptions,
  type MergeRewriteOptions,
  type MergeCondition,
  type MergeOperand,
  type RewriteResult,
  type MergeRewrite,
  type HiddenColumn,
  type OutputColumn,
} from "./rewrite";
export { createAnalysisCache, type AnalysisCache, type AnalysisCacheOptions } from "./cache";
