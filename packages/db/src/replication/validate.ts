import { DbError } from "../db-error";
import { assertTxId } from "../identifiers";
import { firstKeyword } from "../internal/user-statement";
import type { ChangeEntry, SnapshotChunk, WriteOptions } from "./types";

/** Largest number of entries one readChanges returns, and its default. */
export const maxReadChangesLimit = 10_000;
export const defaultReadChangesLimit = 1_000;
/** readChanges stops after about this many bytes of encoded changes (always at least one entry). */
export const maxReadChangesBytes = 4 * 1024 * 1024;
/** Snapshot chunks carry at most this many rows and about this many bytes of values. */
export const maxSnapshotRows = 1_000;
export const maxSnapshotBytes = 1024 * 1024;
/** Most entries applyChanges takes in one call. */
export const maxApplyEntries = 10_000;

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function assertEpochValue(epoch: unknown, what = "epoch"): asserts epoch is number {
  if (!isNonNegativeInteger(epoch)) throw new DbError("INVALID_ARGUMENT", `${what} must be a non-negative integer, got ${String(epoch)}`);
}

export function assertWriteOptions(options: WriteOptions | undefined): void {
  if (options?.epoch !== undefined) assertEpochValue(options.epoch, "the epoch precondition");
}

export function staleEpoch(shardId: string, given: number, stored: number): DbError {
  return new DbError("STALE_EPOCH", `shard ${shardId} is at epoch ${stored}; a write under epoch ${given} is refused`);
}

export function assertLsn(value: unknown, what: string): asserts value is number {
  if (!isNonNegativeInteger(value)) throw new DbError("INVALID_ARGUMENT", `${what} must be a non-negative integer, got ${String(value)}`);
}

/** Structure of entries given to applyChanges: consecutive lsns, well-formed fields. */
export function assertEntries(entries: readonly ChangeEntry[]): void {
  if (!Array.isArray(entries)) throw new DbError("INVALID_ARGUMENT", "applyChanges takes an array of entries");
  if (entries.length > maxApplyEntries) throw new DbError("INVALID_ARGUMENT", `applyChanges takes at most ${maxApplyEntries} entries per call`);
  entries.forEach((entry, index) => {
    const where = `entry ${index + 1}`;
    if (!entry || typeof entry !== "object") throw new DbError("INVALID_ARGUMENT", `${where} is not an entry`);
    if (!isNonNegativeInteger(entry.lsn) || entry.lsn < 1) throw new DbError("INVALID_ARGUMENT", `${where}: lsn must be a positive integer`);
    if (index > 0 && entry.lsn !== entries[index - 1]!.lsn + 1) {
      throw new DbError("REPLICATION_GAP", `entries are not consecutive: lsn ${entries[index - 1]!.lsn} is followed by ${entry.lsn}`);
    }
    if (entry.txId !== null) assertTxId(entry.txId);
    if (typeof entry.origin !== "string" || entry.origin === "") throw new DbError("INVALID_ARGUMENT", `${where}: origin is required`);
    if (!isNonNegativeInteger(entry.originSeq) || entry.originSeq < 1) throw new DbError("INVALID_ARGUMENT", `${where}: originSeq must be a positive integer`);
    assertEpochValue(entry.epoch, `${where}: epoch`);
    if (!isNonNegativeInteger(entry.committedAtMs)) throw new DbError("INVALID_ARGUMENT", `${where}: committedAtMs must be a non-negative integer`);
    if (typeof entry.checksum !== "string" || !/^[0-9a-f]{32}$/.test(entry.checksum)) {
      throw new DbError("INVALID_ARGUMENT", `${where}: checksum must be 32 lower-case hex digits`);
    }
    if (!Array.isArray(entry.changes)) throw new DbError("INVALID_ARGUMENT", `${where}: changes must be an array`);
    if (entry.ddl !== undefined && (!Array.isArray(entry.ddl) || (entry.ddl as unknown[]).some((statement) => typeof statement !== "string"))) {
      throw new DbError("INVALID_ARGUMENT", `${where}: ddl must be an array of strings`);
    }
    for (const change of entry.changes) {
      if (!change || typeof change.table !== "string" || typeof change.key !== "object" || change.key === null) {
        throw new DbError("INVALID_ARGUMENT", `${where}: a change needs a table and a key`);
      }
      if (change.op === "upsert" ? typeof change.row !== "object" || change.row === null : change.op !== "delete") {
        throw new DbError("INVALID_ARGUMENT", `${where}: a change is an upsert with a row or a delete`);
      }
    }
  });
}

/** Whether the statements can only create things (no row of an existing table changes): no rescan needed. */
export function ddlOnlyCreates(ddl: readonly string[]): boolean {
  return ddl.every((statement) => {
    const text = stripLeadingComments(statement);
    if (/^CREATE\s+(UNIQUE\s+)?INDEX\b/i.test(text)) return true;
    return /^CREATE\s+TABLE\b/i.test(text) && !/\bSELECT\b/i.test(text);
  });
}

/** Triggers would run again on every replica that applies the rows they wrote. */
export function assertReplicableDdl(ddl: readonly string[]): void {
  for (const statement of ddl) {
    if (firstKeyword(statement) === "CREATE" && /^CREATE\s+(OR\s+REPLACE\s+)?(CONSTRAINT\s+)?(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(stripLeadingComments(statement))) {
      throw new DbError("INVALID_ARGUMENT", "CREATE TRIGGER is not supported on replicated shards: every replica would run the trigger again");
    }
  }
}

function stripLeadingComments(sql: string): string {
  let text = sql.trimStart();
  for (;;) {
    if (text.startsWith("--")) {
      const newline = text.indexOf("\n");
      text = newline === -1 ? "" : text.slice(newline + 1).trimStart();
    } else if (text.startsWith("/*")) {
      const end = text.indexOf("*/");
      text = end === -1 ? "" : text.slice(end + 2).trimStart();
    } else {
      return text;
    }
  }
}

/** Pulls chunks from a sync or async iterable, one at a time. */
export function chunkReader(chunks: AsyncIterable<SnapshotChunk> | Iterable<SnapshotChunk>): () => Promise<SnapshotChunk | undefined> {
  const iterator =
    Symbol.asyncIterator in (chunks as object)
      ? (chunks as AsyncIterable<SnapshotChunk>)[Symbol.asyncIterator]()
      : (chunks as Iterable<SnapshotChunk>)[Symbol.iterator]();
  return async () => {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  };
}

/** Looks a name up exactly, then case-insensitively (PostgreSQL folds unquoted names, SQLite keeps them). */
export function resolveName(names: Iterable<string>, wanted: string): string | undefined {
  let folded: string | undefined;
  const lower = wanted.toLowerCase();
  for (const name of names) {
    if (name === wanted) return name;
    if (folded === undefined && name.toLowerCase() === lower) folded = name;
  }
  return folded;
}
