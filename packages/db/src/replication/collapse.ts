import { DbError } from "../db-error";
import type { SqlValue } from "../sql-value";
import type { Row, RowChange } from "./types";

/** What a capture trigger saw: one row written by one statement (old image, new image, or both). */
export interface CaptureEvent {
  table: string;
  old: Row | null;
  new: Row | null;
}

/** A key as a string that two equal keys share (numbers and bigints of the same integer are equal). */
export function keyString(table: string, key: Row, keyColumns: readonly string[]): string {
  const parts: string[] = [];
  for (const column of keyColumns) {
    const value: SqlValue = key[column] ?? null;
    if (value instanceof Uint8Array) parts.push(`b${Buffer.from(value).toString("hex")}`);
    else if (typeof value === "bigint" || typeof value === "number") parts.push(`n${String(value)}`);
    else parts.push(JSON.stringify(value));
  }
  return `${table}\u0000${parts.join("\u0000")}`;
}

export function keyOf(row: Row, keyColumns: readonly string[]): Row {
  const key: Row = {};
  for (const column of keyColumns) key[column] = row[column] ?? null;
  return key;
}

/**
 * The net effect of a transaction's captured events, one RowChange per (table, key): `before` is the row before
 * the first write, `row` after the last. A row inserted and deleted again vanishes. An UPDATE that changes the
 * key is a delete of the old key and an upsert of the new one. Ordered by each key's last write, which keeps
 * foreign-key order (a row that references another was written after it).
 */
export function collapseEvents(events: readonly CaptureEvent[], keyColumnsOf: (table: string) => readonly string[]): RowChange[] {
  interface Slot {
    table: string;
    key: Row;
    before: Row | null;
    after: Row | null;
    touched: number;
  }
  const slots = new Map<string, Slot>();
  const slot = (table: string, row: Row, firstImage: Row | null, index: number): Slot => {
    const keyColumns = keyColumnsOf(table);
    if (keyColumns.length === 0) throw new DbError("INTERNAL", `captured table ${table} has no primary key`);
    const key = keyOf(row, keyColumns);
    const id = keyString(table, key, keyColumns);
    let found = slots.get(id);
    if (!found) {
      found = { table, key, before: firstImage, after: firstImage, touched: index };
      slots.set(id, found);
    }
    found.touched = index;
    return found;
  };
  events.forEach((event, index) => {
    if (event.old) slot(event.table, event.old, event.old, index).after = null;
    if (event.new) slot(event.table, event.new, null, index).after = event.new;
  });
  const changes: Array<RowChange & { touched: number }> = [];
  for (const found of slots.values()) {
    if (found.before === null && found.after === null) continue;
    const change: RowChange & { touched: number } = {
      table: found.table,
      op: found.after ? "upsert" : "delete",
      key: found.key,
      before: found.before,
      touched: found.touched,
    };
    if (found.after) change.row = found.after;
    changes.push(change);
  }
  changes.sort((a, b) => a.touched - b.touched);
  return changes.map(({ touched: _touched, ...change }) => change);
}
