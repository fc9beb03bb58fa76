import { createHash } from "node:crypto";
import { DbError } from "./db-error";

// Shard ids become file names (SQLite) and part of schema names and prepared-transaction ids (PostgreSQL), so
// they are restricted to characters that are safe in all three. Transaction ids may not contain `_`, which
// separates the transaction id from the shard id in `myc_<txId>_<shardId>`.
const shardIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const txIdPattern = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,63}$/;

export function assertShardId(shardId: string): void {
  if (typeof shardId !== "string" || !shardIdPattern.test(shardId)) {
    throw new DbError(
      "INVALID_ARGUMENT",
      `invalid shard id ${JSON.stringify(shardId)}: expected 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
}

export function assertTxId(txId: string): void {
  if (typeof txId !== "string" || !txIdPattern.test(txId)) {
    throw new DbError(
      "INVALID_ARGUMENT",
      `invalid transaction id ${JSON.stringify(txId)}: expected 1-64 characters of [A-Za-z0-9.:-], starting with a letter or digit`,
    );
  }
}

/**
 * `myc_<sanitised shard id>`: lower case, every other character `_`. When that mapping is not one-to-one for
 * this id (upper case, `.` or `-` in it) or the name would pass PostgreSQL's 63-byte limit, a hash of the exact
 * id is appended so two shards never share a schema.
 */
export function postgresSchemaName(shardId: string): string {
  const sanitised = shardId.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const exact = sanitised === shardId;
  const plain = `myc_${sanitised}`;
  if (exact && plain.length <= 63) return plain;
  const hash = createHash("sha256").update(shardId).digest("hex").slice(0, 10);
  return `myc_${sanitised.slice(0, 63 - 4 - 11)}_${hash}`;
}

export const preparedTransactionPrefix = "myc_";

/**
 * `myc_<txId>_<shardId>`, and `~<databaseTag>` when given. PostgreSQL's prepared-transaction ids are global to
 * the server, and several nodes may share one server (a database each): replicas of one shard on two such
 * nodes would otherwise collide when both prepare the same transaction (a promoted secondary finishing a
 * transaction the dead primary still holds prepared).
 */
export function preparedTransactionId(txId: string, shardId: string, databaseTag?: string): string {
  return `${preparedTransactionPrefix}${txId}_${shardId}${databaseTag ? `~${databaseTag}` : ""}`;
}

/** A short tag of a database name for preparedTransactionId. */
export function databaseTag(database: string): string {
  return createHash("sha256").update(database).digest("hex").slice(0, 8);
}

export function parsePreparedTransactionId(gid: string): { txId: string; shardId: string } | null {
  if (!gid.startsWith(preparedTransactionPrefix)) return null;
  const tagAt = gid.indexOf("~");
  const rest = gid.slice(preparedTransactionPrefix.length, tagAt === -1 ? undefined : tagAt);
  const separator = rest.indexOf("_");
  if (separator <= 0) return null;
  const txId = rest.slice(0, separator);
  const shardId = rest.slice(separator + 1);
  if (!txIdPattern.test(txId) || !shardIdPattern.test(shardId)) return null;
  return { txId, shardId };
}
