import { fromValue, router, type SqlValue } from "@mycelium/proto";
import { compareSqlValues } from "./merge-values";

type Truth = boolean | null;

/** Whether a combined group satisfies the HAVING condition (SQL three-valued logic; unknown is not kept). */
export function satisfiesHaving(condition: router.MergeCondition, row: readonly SqlValue[]): boolean {
  return evaluate(condition, row) === true;
}

function evaluate(condition: router.MergeCondition, row: readonly SqlValue[]): Truth {
  const kind = condition.kind;
  if (!kind) throw new Error("merge plan has an empty HAVING condition");
  switch (kind.$case) {
    case "all": {
      let result: Truth = true;
      for (const part of kind.value.conditions) {
        const value = evaluate(part, row);
        if (value === false) return false;
        if (value === null) result = null;
      }
      return result;
    }
    case "any": {
      let result: Truth = false;
      for (const part of kind.value.conditions) {
        const value = evaluate(part, row);
        if (value === true) return true;
        if (value === null) result = null;
      }
      return result;
    }
    case "not": {
      const value = evaluate(kind.value, row);
      return value === null ? null : !value;
    }
    case "nullTest": {
      const value = operand(kind.value.operand, row);
      return kind.value.negated ? value !== null : value === null;
    }
    case "compare": {
      const left = operand(kind.value.left, row);
      const right = operand(kind.value.right, row);
      if (left === null || right === null) return null;
      const c = compareSqlValues(left, right);
      switch (kind.value.operator) {
        case router.ComparisonOperator.COMPARISON_OPERATOR_EQUAL:
          return c === 0;
        case router.ComparisonOperator.COMPARISON_OPERATOR_NOT_EQUAL:
          return c !== 0;
        case router.ComparisonOperator.COMPARISON_OPERATOR_LESS:
          return c < 0;
        case router.ComparisonOperator.COMPARISON_OPERATOR_LESS_OR_EQUAL:
          return c <= 0;
        case router.ComparisonOperator.COMPARISON_OPERATOR_GREATER:
          return c > 0;
        case router.ComparisonOperator.COMPARISON_OPERATOR_GREATER_OR_EQUAL:
          return c >= 0;
        default:
          throw new Error(`merge plan has an unknown comparison operator ${kind.value.operator}`);
      }
    }
  }
}

function operand(value: router.MergeOperand | undefined, row: readonly SqlValue[]): SqlValue {
  const kind = value?.kind;
  if (!kind) throw new Error("merge plan has an empty HAVING operand");
  if (kind.$case === "value") return fromValue(kind.value);
  if (kind.value < 0 || kind.value >= row.length) throw new Error(`HAVING reads column ${kind.value} of a ${row.length}-column row`);
  return row[kind.value]!;
}
