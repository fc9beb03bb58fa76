import { randomUUID } from "node:crypto";
import { common, coordinator, nodeagent, router } from "@mycelium/proto";
import { isMyceliumError, MyceliumError, sleep } from "@mycelium/rpc";
import type { Logger } from "@mycelium/telemetry";
import { replicaKey, type ControlStore, type MigrationRecord, type MigrationStore, type MigrationTableChange } from "@mycelium/topology";
import type { ClusterClient } from "./adapters/cluster-client";
import type { SchemaClient } from "./adapters/schema-client";
import { checkMigrationFiles, migrationChecksum, migrationStatus, pendingMigrations, pendingStatus, type ShardCopy } from "./core/migration-status";

export interface SchemaMigrationsOptions {
  coordinatorId: string;
  store: ControlStore;
  migrations: MigrationStore;
  schema: SchemaClient;
  cluster: ClusterClient;
  log: Logger;
  /** Deadline of one ApplySchema call on one copy. @default 60000 */
  applyTimeoutMs?: number;
  /** ApplySchema calls in flight at once. @default 16 */
  concurrency?: number;
  /** How long DDL run through TransactionService waits for a migration run in progress. @default 15000 */
  lockWaitMs?: number;
  /** The migration lock's lease; renewed every third of it while a run lasts. @default 30000 */
  leaseTtlMs?: number;
}

interface Counters {
  applied: number;
  skipped: number;
}

interface Copy extends ShardCopy {
  epoch: number;
}

const lockName = "schema-migrations";

/**
 * Schema changes, all of them: migration files (`mycelium migrate`) and DDL run through
 * TransactionService (an ad-hoc migration of one statement). One run at a time in the cluster (a
 * control-store lease). For each table a migration changes:
 *
 * 1. The migration is recorded as `applying` with the versions the router planned (PlanMigrations).
 * 2. It is applied to one shard's primary first (a trial): a statement the database refuses fails the
 *    migration there, and nothing anywhere has changed.
 * 3. The router records the table's new schema and version (RecordSchema): from then on, statements go
 *    only to copies that have the new version (UNAVAILABLE, SCHEMA_VERSION for the others).
 * 4. Every other shard's primary gets it (ApplySchema, bounded concurrency). Each primary records the
 *    migration in its own database with the DDL, so a re-delivery is skipped there; the coordinator
 *    records the copy as done in the migration record and tells the router its version. Secondaries
 *    receive the DDL through the change log, at the same point of the log, and report their version in
 *    their heartbeats.
 *
 * A run that stops midway (a node down, this coordinator killed) leaves the record `applying`; the
 * next run finishes it first, asking only the copies not yet done (and those that did it without the
 * coordinator hearing of it answer `already applied`).
 */
export class SchemaMigrations {
  private readonly applyTimeoutMs: number;
  private readonly concurrency: number;
  private readonly lockWaitMs: number;
  private readonly leaseTtlMs: number;

  constructor(private readonly options: SchemaMigrationsOptions) {
    this.applyTimeoutMs = options.applyTimeoutMs ?? 60_000;
    this.concurrency = options.concurrency ?? 16;
    this.lockWaitMs = options.lockWaitMs ?? 15_000;
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
  }

  // ---- the API -------------------------------------------------------------------------------------

  async apply(request: coordinator.ApplyMigrationsRequest): Promise<coordinator.ApplyMigrationsResponse> {
    const files = checkMigrationFiles(request.migrations);
    return this.withLock(2000, async (lock) => {
      const recorded = await this.options.migrations.listMigrations();
      const pending = pendingMigrations(files, recorded);
      const unfinished = recorded.filter((record) => record.state === "applying");
      const plans = pending.length > 0 && (request.dryRun || unfinished.length === 0) ? await this.options.schema.planMigrations(pending) : [];
      if (request.dryRun) {
        const statuses = await this.statusesOf(unfinished);
        return coordinator.ApplyMigrationsResponse.create({
          migrations: [...statuses, ...pending.map((file, i) => ({ ...pendingStatus(file), tables: plans[i]?.tables.map(tableVersion) ?? [] }))],
        });
      }
      const counters: Counters = { applied: 0, skipped: 0 };
      const worked: MigrationRecord[] = [];
      try {
        for (const record of unfinished) {
          this.options.log.info({ migrationId: record.id }, "finishing an unfinished migration");
          worked.push(await this.run(record, counters, lock));
        }
        // Planned after the unfinished ones are done: they may change the schemas the new ones build on.
        const planned = plans.length > 0 ? plans : pending.length > 0 ? await this.options.schema.planMigrations(pending) : [];
        for (const [i, file] of pending.entries()) {
          const record: MigrationRecord = {
            id: file.id,
            number: file.number,
            name: file.name,
            checksum: file.checksum,
            statements: file.statements,
            adHoc: false,
            tables: planned[i]!.tables.map(tableChange),
            done: {},
            state: "applying",
            startedAtMs: Date.now(),
            appliedAtMs: null,
          };
          if (!(await this.options.migrations.createMigration(record))) {
            throw new MyceliumError("ABORTED", `migration ${file.id} was recorded concurrently; run migrate again`, { reason: "VERSION_CONFLICT" });
          }
          this.options.log.info({ migrationId: file.id, tables: record.tables.map((t) => `${t.table} ${t.fromVersion}→${t.toVersion}`) }, "applying migration");
          worked.push(await this.run(record, counters, lock));
        }
      } catch (error) {
        throw withProgress(error, counters);
      }
      return coordinator.ApplyMigrationsResponse.create({
        migrations: await this.statusesOf(worked),
        replicasApplied: counters.applied,
        replicasSkipped: counters.skipped,
      });
    });
  }

  async status(request: coordinator.GetMigrationStatusRequest): Promise<coordinator.GetMigrationStatusResponse> {
    const files = checkMigrationFiles(request.migrations);
    const recorded = await this.options.migrations.listMigrations();
    const known = new Set(recorded.filter((r) => !r.adHoc).map((r) => r.id));
    pendingMigrations(files.filter((file) => known.has(file.id)), recorded); // refuses changed files
    const statuses = await this.statusesOf(recorded.filter((r) => !r.adHoc || r.state === "applying"));
    const pending = files.filter((file) => !known.has(file.id)).map(pendingStatus);
    return coordinator.GetMigrationStatusResponse.create({ migrations: [...statuses, ...pending] });
  }

  /**
   * DDL sent through TransactionService (the TransactionManager's DDL hook): a migration of one
   * statement. Sending the same statement again after a failure finishes it; other DDL on a table with
   * an unfinished migration is refused until `mycelium migrate` finishes that one.
   */
  async executeDdl(statement: common.Statement, plan: router.RoutePlan): Promise<common.ResultSet> {
    if (statement.params.length > 0) throw new MyceliumError("INVALID_ARGUMENT", "DDL takes no ? parameters", { reason: "DDL_PARAMETERS" });
    const sql = statement.sql.trim();
    const table = plan.ddlTable;
    await this.withLock(this.lockWaitMs, async (lock) => {
      const unfinished = (await this.options.migrations.listMigrations()).filter((r) => r.state === "applying" && r.tables.some((t) => t.table === table));
      let record = unfinished.find((r) => r.adHoc && r.statements.length === 1 && r.statements[0] === sql);
      if (!record && unfinished.length > 0) {
        const other = unfinished[0]!;
        throw new MyceliumError(
          "FAILED_PRECONDITION",
          `table ${table} has an unfinished migration ${other.id}${other.adHoc ? ` (${other.statements[0]})` : ""}; finish it first with \`mycelium migrate\` (it resumes unfinished migrations), see \`mycelium migrate status\``,
          { reason: "MIGRATION_UNFINISHED", details: { table, migrationId: other.id } },
        );
      }
      if (!record) {
        const id = `sql-${Date.now()}-${randomUUID().slice(0, 8)}`;
        const [planned] = await this.options.schema.planMigrations([{ id, statements: [sql] }]);
        record = {
          id,
          number: 0,
          name: sql.length > 80 ? `${sql.slice(0, 77)}...` : sql,
          checksum: migrationChecksum([sql]),
          statements: [sql],
          adHoc: true,
          tables: planned!.tables.map(tableChange),
          done: {},
          state: "applying",
          startedAtMs: Date.now(),
          appliedAtMs: null,
        };
        await this.options.migrations.createMigration(record);
      }
      await this.run(record, { applied: 0, skipped: 0 }, lock);
    });
    return common.ResultSet.create({ columns: [], rows: [], rowsAffected: 0 });
  }

  // ---- running one migration -----------------------------------------------------------------------

  private async run(record: MigrationRecord, counters: Counters, lock: Lock): Promise<MigrationRecord> {
    let current = record;
    for (const change of record.tables) {
      lock.assertHeld();
      current = await this.runTable(current, change, counters);
    }
    if (current.adHoc) {
      await this.options.migrations.deleteMigration(current.id);
      return { ...current, state: "applied", appliedAtMs: Date.now() };
    }
    const finished = await this.options.migrations.updateMigration(current.id, (r) => ({ ...r, state: "applied", appliedAtMs: Date.now() }));
    this.options.log.info({ migrationId: current.id }, "migration applied everywhere");
    return finished ?? current;
  }

  private async runTable(record: MigrationRecord, change: MigrationTableChange, counters: Counters): Promise<MigrationRecord> {
    const { schema } = this.options;
    const copies = await this.copiesOf(change.table);
    const addresses = await schema.nodeAddresses();
    let current = record;
    let todo = copies.filter((copy) => current.done[replicaKey(copy.shardId, copy.nodeId)] === undefined);
    const failures: Array<{ copy: Copy; error: unknown }> = [];

    const routerSchema = await schema.tableSchema(change.table);
    const recorded = isRecordedOnRouter(change, routerSchema);
    if (!recorded && routerSchema.version !== change.fromVersion) {
      throw new MyceliumError(
        "FAILED_PRECONDITION",
        `table ${change.table} is at schema version ${routerSchema.version}, but migration ${record.id} moves it from ${change.fromVersion} to ${change.toVersion}: the table changed outside this migration`,
        { reason: "SCHEMA_CHANGED", details: { table: change.table } },
      );
    }
    if (!recorded) {
      // The trial: one copy first, so a statement the database refuses changes nothing anywhere.
      const doneBefore = Object.keys(current.done).length;
      let trial: Copy | null = null;
      for (const copy of todo) {
        try {
          const outcome = await this.applyTo(current, change, copy, addresses, counters);
          current = await this.recordDone(current, [outcome]);
          trial = copy;
          break;
        } catch (error) {
          if (isRefusal(error)) {
            if (doneBefore === 0 && record.tables[0] === change) {
              // Nothing of this migration happened anywhere: forget it, so a corrected file starts afresh.
              await this.options.migrations.deleteMigration(record.id);
              throw new MyceliumError(
                (error as MyceliumError).code,
                `migration ${record.id} failed on shard ${copy.shardId} (node ${copy.nodeId}), nothing was changed: ${(error as Error).message}`,
                { reason: "MIGRATION_REFUSED", details: { migrationId: record.id, shardId: copy.shardId, nodeId: copy.nodeId } },
              );
            }
          }
          failures.push({ copy, error });
        }
      }
      if (!trial && todo.length > 0) throw incomplete(record.id, change.table, copies.length, copies.length - todo.length, failures);
      todo = todo.filter((copy) => copy !== trial);
      const version = await schema.recordSchema(change.table, change.statements);
      if (version !== change.toVersion) {
        throw new MyceliumError("INTERNAL", `router recorded version ${version} of ${change.table}, migration ${record.id} planned ${change.toVersion}`);
      }
      failures.length = 0;
    }

    const settled = await runBounded(todo.map((copy) => () => this.applyTo(current, change, copy, addresses, counters)), this.concurrency);
    const outcomes = settled.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    settled.forEach((result, i) => {
      if (result.status === "rejected") failures.push({ copy: todo[i]!, error: result.reason });
    });
    current = await this.recordDone(current, outcomes);
    if (failures.length > 0) throw incomplete(record.id, change.table, copies.length, copies.length - failures.length, failures);
    return current;
  }

  private async applyTo(record: MigrationRecord, change: MigrationTableChange, copy: Copy, addresses: Map<string, string>, counters: Counters): Promise<{ copy: Copy; schema: common.ShardSchemaState | undefined }> {
    const address = addresses.get(copy.nodeId);
    if (!address) throw new MyceliumError("UNAVAILABLE", `node ${copy.nodeId} is not registered`, { reason: "NO_NODE" });
    const response = await this.options.cluster.node(address).applySchema(
      nodeagent.ApplySchemaRequest.create({
        shard: { shardId: copy.shardId, epoch: copy.epoch },
        table: change.table,
        ddl: change.statements,
        migrationId: record.id,
        schemaVersion: change.toVersion,
        fromVersion: change.fromVersion,
      }),
      { deadlineMs: this.applyTimeoutMs, idempotent: true },
    );
    if (response.alreadyApplied) counters.skipped += 1;
    else counters.applied += 1;
    return { copy, schema: response.schema };
  }

  /** Tells the router the copies' versions, then marks them done in the migration record. */
  private async recordDone(record: MigrationRecord, outcomes: ReadonlyArray<{ copy: Copy; schema: common.ShardSchemaState | undefined }>): Promise<MigrationRecord> {
    if (outcomes.length === 0) return record;
    await this.options.schema.recordReplicaSchemas(
      outcomes.filter((o) => o.schema).map((o) => router.ReplicaSchema.create({ shardId: o.copy.shardId, nodeId: o.copy.nodeId, schema: o.schema })),
    );
    const atMs = Date.now();
    const updated = await this.options.migrations.updateMigration(record.id, (r) => {
      const done = { ...r.done };
      for (const { copy } of outcomes) done[replicaKey(copy.shardId, copy.nodeId)] = atMs;
      return { ...r, done };
    });
    return updated ?? record;
  }

  /**
   * Where a migration is applied: each shard's primary. Secondaries receive the DDL (and the migration
   * record written with it) through the change log, at the same point of the log as the primary.
   */
  private async copiesOf(table: string): Promise<Copy[]> {
    const shards = await this.options.schema.shards(table);
    return shards
      .slice()
      .sort((a, b) => a.index - b.index)
      .map((shard) => ({ table, shardId: shard.shardId, nodeId: shard.primaryNodeId, epoch: shard.epoch }));
  }

  private async statusesOf(records: readonly MigrationRecord[]): Promise<coordinator.MigrationStatus[]> {
    if (records.length === 0) return [];
    const [shards, replicas] = await Promise.all([this.options.schema.shards(), this.options.migrations.listReplicas()]);
    const versions = new Map(replicas.map((r) => [replicaKey(r.shardId, r.nodeId), r.version]));
    const copiesOf = (table: string) =>
      shards.filter((shard) => shard.table === table).flatMap((shard) => shard.replicaNodeIds.map((nodeId) => ({ table, shardId: shard.shardId, nodeId })));
    return records.map((record) => migrationStatus(record, copiesOf, (shardId, nodeId) => versions.get(replicaKey(shardId, nodeId)) ?? 0));
  }

  // ---- the cluster-wide lock -----------------------------------------------------------------------

  private async withLock<T>(waitMs: number, work: (lock: Lock) => Promise<T>): Promise<T> {
    const { store } = this.options;
    const holder = `${this.options.coordinatorId}/${randomUUID()}`;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lease = await store.acquireLease(lockName, holder, this.leaseTtlMs);
      if (lease.acquired) break;
      if (Date.now() >= deadline) {
        throw new MyceliumError("ABORTED", `another schema change is running (${lease.holder}); retry when it is done`, { reason: "MIGRATION_RUNNING" });
      }
      await sleep(100);
    }
    const lock = new Lock();
    const renewal = setInterval(() => {
      store.acquireLease(lockName, holder, this.leaseTtlMs).then(
        (lease) => {
          if (!lease.acquired) lock.lost = true;
        },
        (error: unknown) => this.options.log.warn({ err: error }, "could not renew the schema migration lock"),
      );
    }, Math.max(100, Math.floor(this.leaseTtlMs / 3)));
    renewal.unref();
    try {
      return await work(lock);
    } finally {
      clearInterval(renewal);
      await store.releaseLease(lockName, holder).catch(() => undefined);
    }
  }
}

class Lock {
  lost = false;

  assertHeld(): void {
    if (this.lost) throw new MyceliumError("ABORTED", "lost the schema migration lock (the control store was unreachable); run migrate again", { reason: "MIGRATION_RUNNING" });
  }
}

/**
 * Whether the router already holds the migration's result for the table: its version is the target and
 * its DDL history ends with the migration's statements (a dropped table: no schema left).
 */
export function isRecordedOnRouter(change: MigrationTableChange, routerSchema: { version: number; ddl: readonly string[] }): boolean {
  if (routerSchema.version !== change.toVersion) return false;
  if (change.toVersion === 0) return true;
  if (change.fromVersion === change.toVersion) return true;
  const tail = routerSchema.ddl.slice(-change.statements.length);
  return tail.length === change.statements.length && tail.every((sql, i) => sql === change.statements[i]);
}

/** The database refused the DDL itself (syntax, an object that exists or does not): retrying will not help. */
function isRefusal(error: unknown): boolean {
  if (!isMyceliumError(error)) return false;
  if (error.reason === "SCHEMA_VERSION") return false;
  return error.code === "INVALID_ARGUMENT" || error.code === "ALREADY_EXISTS" || error.code === "NOT_FOUND" || error.code === "FAILED_PRECONDITION";
}

function incomplete(id: string, table: string, total: number, done: number, failures: ReadonlyArray<{ copy: Copy; error: unknown }>): MyceliumError {
  const listed = failures.slice(0, 8).map(({ copy, error }) => `${copy.shardId} on ${copy.nodeId} (${error instanceof Error ? error.message : String(error)})`);
  const more = failures.length > listed.length ? `, and ${failures.length - listed.length} more` : "";
  return new MyceliumError(
    "UNAVAILABLE",
    `migration ${id} reached ${done} of ${total} copies of ${table}'s shards; not yet: ${listed.join("; ")}${more}. Run \`mycelium migrate\` again to finish it (copies that have it are not touched again); until then those copies are not routed to`,
    { reason: "MIGRATION_INCOMPLETE", details: { migrationId: id, table, done: String(done), total: String(total) } },
  );
}

function withProgress(error: unknown, counters: Counters): unknown {
  if (!isMyceliumError(error)) return error;
  return new MyceliumError(error.code, `${error.message} (this run: ${counters.applied} copies migrated, ${counters.skipped} already had it)`, {
    ...(error.reason ? { reason: error.reason } : {}),
    details: { ...error.details, replicasApplied: String(counters.applied), replicasSkipped: String(counters.skipped) },
  });
}

function tableChange(change: router.TableChange): MigrationTableChange {
  return { table: change.table, statements: change.statements, fromVersion: change.fromVersion, toVersion: change.toVersion };
}

function tableVersion(change: router.TableChange): coordinator.TableVersionChange {
  return coordinator.TableVersionChange.create({ table: change.table, fromVersion: change.fromVersion, toVersion: change.toVersion });
}

async function runBounded<T>(thunks: Array<() => Promise<T>>, limit: number): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(thunks.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, thunks.length) }, async () => {
    while (next < thunks.length) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await thunks[index]!() };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  });
  await Promise.all(workers);
  return results;
}
