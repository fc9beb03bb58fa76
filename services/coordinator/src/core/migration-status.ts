import { createHash } from "node:crypto";
import { coordinator } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { replicaKey, type MigrationRecord } from "@mycelium/topology";

/** SHA-256 (hex) of a migration's statements; what identifies a file's content once it is applied. */
export function migrationChecksum(statements: readonly string[]): string {
  return createHash("sha256").update(statements.map((s) => s.trim()).join("\n;\n")).digest("hex");
}

const idPattern = /^(\d+)_([A-Za-z0-9_.-]+)$/;

/** A migration file as the caller sent it, checked: id `<number>_<name>`, statements, checksum recomputed. */
export interface MigrationFile {
  id: string;
  number: number;
  name: string;
  statements: string[];
  checksum: string;
}

/**
 * Checks the caller's migrations: well-formed ids, numbers unique and in ascending order, statements
 * present; returns them with checksums computed here (the caller's are not trusted).
 */
export function checkMigrationFiles(migrations: readonly coordinator.Migration[]): MigrationFile[] {
  const files: MigrationFile[] = [];
  const problems: string[] = [];
  for (const migration of migrations) {
    const match = idPattern.exec(migration.id);
    if (!match) {
      problems.push(`migration id "${migration.id}" is not <number>_<name>`);
      continue;
    }
    const number = Number(match[1]);
    const statements = migration.statements.map((s) => s.trim()).filter(Boolean);
    if (statements.length === 0) problems.push(`migration ${migration.id} has no statements`);
    files.push({ id: migration.id, number, name: match[2]!, statements, checksum: migrationChecksum(statements) });
  }
  for (let i = 1; i < files.length; i++) {
    const previous = files[i - 1]!;
    const current = files[i]!;
    if (current.number === previous.number) problems.push(`migrations ${previous.id} and ${current.id} have the same number ${current.number}`);
    else if (current.number < previous.number) problems.push(`migration ${current.id} comes after ${previous.id}: migrations must be sent in ascending order`);
  }
  if (problems.length > 0) throw new MyceliumError("INVALID_ARGUMENT", problems.join("; "), { reason: "BAD_MIGRATIONS" });
  return files;
}

/**
 * Which of the files are new, checked against what the control store recorded: a recorded migration
 * whose statements changed is refused (MIGRATION_CHANGED), and so is a new file numbered below a
 * recorded one (it would apply out of order; renumber it).
 */
export function pendingMigrations(files: readonly MigrationFile[], recorded: readonly MigrationRecord[]): MigrationFile[] {
  const byId = new Map(recorded.filter((r) => !r.adHoc).map((r) => [r.id, r]));
  const problems: string[] = [];
  for (const file of files) {
    const known = byId.get(file.id);
    if (known && known.checksum !== file.checksum) {
      problems.push(`migration ${file.id} was ${known.state === "applied" ? "applied" : "started"} with other statements (checksum ${known.checksum.slice(0, 12)}…, the file now ${file.checksum.slice(0, 12)}…); a migration must not change once applied — add a new one`);
    }
  }
  if (problems.length > 0) throw new MyceliumError("FAILED_PRECONDITION", problems.join("; "), { reason: "MIGRATION_CHANGED" });
  const highest = Math.max(0, ...recorded.filter((r) => !r.adHoc).map((r) => r.number));
  const pending = files.filter((file) => !byId.has(file.id));
  const early = pending.filter((file) => file.number <= highest);
  if (early.length > 0) {
    const last = recorded.filter((r) => !r.adHoc && r.number === highest).map((r) => r.id)[0];
    throw new MyceliumError(
      "FAILED_PRECONDITION",
      `migration ${early.map((f) => f.id).join(", ")} is new but numbered at or below ${last}, which is already recorded; migrations apply in order — renumber it after ${last}`,
      { reason: "MIGRATION_OUT_OF_ORDER" },
    );
  }
  return pending;
}

/** A copy of a shard: which table, which shard, which node. */
export interface ShardCopy {
  table: string;
  shardId: string;
  nodeId: string;
}

/** The state of a recorded migration against the current copies of its tables' shards. */
export function migrationStatus(
  record: MigrationRecord,
  copiesOf: (table: string) => readonly ShardCopy[],
  versionOf: (shardId: string, nodeId: string) => number,
): coordinator.MigrationStatus {
  const copies = record.tables.flatMap((change) => copiesOf(change.table));
  const behind = copies.filter((copy) => record.done[replicaKey(copy.shardId, copy.nodeId)] === undefined);
  const applied = record.state === "applied" || behind.length === 0;
  return coordinator.MigrationStatus.create({
    id: record.id,
    state: applied ? coordinator.MigrationState.MIGRATION_STATE_APPLIED : coordinator.MigrationState.MIGRATION_STATE_PARTIAL,
    tables: record.tables.map((change) => ({ table: change.table, fromVersion: change.fromVersion, toVersion: change.toVersion })),
    behind: applied ? [] : behind.map((copy) => ({ ...copy, version: versionOf(copy.shardId, copy.nodeId) })),
    replicasDone: copies.length - (applied ? 0 : behind.length),
    replicasTotal: copies.length,
    startedAtMs: record.startedAtMs,
    appliedAtMs: record.appliedAtMs ?? 0,
    adHoc: record.adHoc,
    checksum: record.checksum,
    statements: record.statements,
  });
}

/** A file the control store does not know yet. */
export function pendingStatus(file: MigrationFile): coordinator.MigrationStatus {
  return coordinator.MigrationStatus.create({
    id: file.id,
    state: coordinator.MigrationState.MIGRATION_STATE_PENDING,
    checksum: file.checksum,
    statements: file.statements,
  });
}
