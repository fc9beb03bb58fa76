import type { SqlValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { compareSqlValues } from "./merge-values";

const int64Max = (1n << 63n) - 1n;
const int64Min = -(1n << 63n);
const decimalText = /^([+-]?)(\d+)(?:\.(\d*))?$/;

/**
 * Adds partial sums the way SQLite's sum() adds values: integers stay exact integers (an int64 overflow is
 * an error, as in SQLite), any real makes the result real (Kahan–Babuška–Neumaier summation, as SQLite
 * 3.43+). PostgreSQL returns numeric sums as decimal text; those are added exactly and stay text.
 */
export class SumAccumulator {
  private seen = false;
  private integer = 0n;
  private sawReal = false;
  private real = 0;
  private compensation = 0;
  private sawDecimal = false;
  private decimalUnits = 0n;
  private decimalScale = 0;

  add(value: SqlValue): void {
    if (value === null) return;
    this.seen = true;
    if (typeof value === "bigint") this.integer += value;
    else if (typeof value === "boolean") this.integer += value ? 1n : 0n;
    else if (typeof value === "number") {
      if (Number.isSafeInteger(value)) this.integer += BigInt(value);
      else this.addReal(value);
    } else if (typeof value === "string") {
      const match = decimalText.exec(value.trim());
      if (!match) throw new Error(`a shard returned ${JSON.stringify(value)} as a partial SUM`);
      this.addDecimal(match);
    } else {
      throw new Error("a shard returned a blob as a partial SUM");
    }
  }

  private addReal(value: number): void {
    this.sawReal = true;
    const total = this.real + value;
    this.compensation += Math.abs(this.real) >= Math.abs(value) ? this.real - total + value : value - total + this.real;
    this.real = total;
  }

  private addDecimal([, sign, whole, fraction = ""]: RegExpExecArray): void {
    this.sawDecimal = true;
    const scale = Math.max(this.decimalScale, fraction.length);
    this.decimalUnits *= 10n ** BigInt(scale - this.decimalScale);
    this.decimalScale = scale;
    const units = BigInt(whole! + fraction.padEnd(scale, "0"));
    this.decimalUnits += sign === "-" ? -units : units;
  }

  /** The sum; `overflow` says what an integer sum outside int64 does (SQLite's sum() fails, avg() goes real). */
  result(overflow: "error" | "real" = "error"): SqlValue {
    if (!this.seen) return null;
    if (this.sawReal) {
      return this.real + this.compensation + Number(this.integer) + (this.sawDecimal ? Number(formatDecimal(this.decimalUnits, this.decimalScale)) : 0);
    }
    if (this.sawDecimal) {
      return formatDecimal(this.decimalUnits + this.integer * 10n ** BigInt(this.decimalScale), this.decimalScale);
    }
    if (this.integer > int64Max || this.integer < int64Min) {
      if (overflow === "real") return Number(this.integer);
      throw new MyceliumError("INVALID_ARGUMENT", "integer overflow: the SUM of all shards does not fit in a 64-bit integer", { reason: "INTEGER_OVERFLOW" });
    }
    return integerValue(this.integer);
  }
}

function formatDecimal(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${whole}${scale > 0 ? `.${fraction}` : ""}`;
}

export function integerValue(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Adds partial counts (integers, possibly bigint, or PostgreSQL int8 as decimal text). */
export function addCounts(a: SqlValue, b: SqlValue): SqlValue {
  return integerValue(toBigInt(a) + toBigInt(b));
}

function toBigInt(value: SqlValue): bigint {
  if (value === null) return 0n;
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^[+-]?\d+$/.test(value.trim())) return BigInt(value.trim());
  throw new Error(`a shard returned ${String(value)} as a partial COUNT`);
}

/** MIN / MAX: NULLs are ignored; values compare in SQLite's order. */
export function extreme(a: SqlValue, b: SqlValue, which: "min" | "max"): SqlValue {
  if (a === null) return b;
  if (b === null) return a;
  const c = compareSqlValues(b, a);
  return (which === "min" ? c < 0 : c > 0) ? b : a;
}

/** AVG from the combined sum and count: NULL for no rows, else a real (SQLite's avg() is always real). */
export function average(sum: SqlValue, count: SqlValue): SqlValue {
  const n = count === null ? 0 : Number(count);
  if (n === 0 || sum === null) return null;
  return Number(sum) / n;
}
