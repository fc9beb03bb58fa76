import type { SqlValue } from "@mycelium/proto";

export interface EntryRows {
  lsn: number;
  txId: string;
  origin: string;
  originSeq: number;
  /** Rows the transaction changed, as table + primary key. */
  rows: Array<{ table: string; key: Record<string, SqlValue> }>;
}

/**
 * Entries a returning primary holds that the current primary never saw: those it originated itself
 * beyond what the current primary's version vector records of it.
 */
export function divergentEntries<T extends { origin: string; originSeq: number }>(returning: readonly T[], returningNode: string, currentVersionVector: Readonly<Record<string, number>>): T[] {
  const seen = currentVersionVector[returningNode] ?? 0;
  return returning.filter((entry) => entry.origin === returningNode && entry.originSeq > seen);
}

export interface Classification<T> {
  /** Touch no row changed on the current primary since the fork: safe to apply there now. */
  reapply: T[];
  /** Touch a row that changed on both sides: journaled for an operator, with the reasons. */
  conflicting: Array<{ entry: T; reasons: string[] }>;
}

/**
 * Decide what to do with divergent transactions. A transaction conflicts when a row it wrote was
 * also written on the current primary after the fork — its effect was computed from a state that no
 * longer holds (its writes are its read set here: change entries do not carry statements, and an
 * UPDATE or DELETE reads the rows it changes). Transactions are taken in their original order; one
 * that touches a row an earlier conflicting one wrote is held back too, so nothing applies on top of a
 * missing predecessor.
 */
export function classifyDivergence<T extends EntryRows>(divergent: readonly T[], sinceFork: readonly EntryRows[]): Classification<T> {
  const keyOf = (table: string, key: Record<string, SqlValue>) =>
    `${table}\u0000${JSON.stringify(Object.keys(key).sort().map((k) => [k, typeof key[k] === "bigint" ? String(key[k]) : key[k]]))}`;
  const changedThere = new Map<string, number>();
  for (const entry of sinceFork) for (const row of entry.rows) changedThere.set(keyOf(row.table, row.key), entry.lsn);
  const heldBack = new Set<string>();
  const result: Classification<T> = { reapply: [], conflicting: [] };
  for (const entry of [...divergent].sort((a, b) => a.lsn - b.lsn)) {
    const reasons: string[] = [];
    for (const row of entry.rows) {
      const key = keyOf(row.table, row.key);
      const there = changedThere.get(key);
      if (there !== undefined) reasons.push(`${row.table} ${JSON.stringify(row.key, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))} was also changed on the current primary (lsn ${there})`);
      else if (heldBack.has(key)) reasons.push(`${row.table} ${JSON.stringify(row.key, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))} was changed by an earlier conflicting transaction`);
    }
    if (reasons.length > 0) {
      result.conflicting.push({ entry, reasons });
      for (const row of entry.rows) heldBack.add(keyOf(row.table, row.key));
    } else {
      result.reapply.push(entry);
    }
  }
  return result;
}
