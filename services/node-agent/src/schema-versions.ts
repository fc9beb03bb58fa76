import { isDbError, type ShardStore } from "@mycelium/db";
import { common, nodeagent } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { FaultPoints } from "@mycelium/runtime";
import type { Logger } from "@mycelium/telemetry";
import { toMyceliumError } from "./core/db-errors";

/**
 * The node-agent's record of the migrations each shard has applied, kept in the shard's own database so
 * the record commits in the same local transaction as the DDL (both backends have transactional DDL): a
 * crash leaves either the DDL and its record, or neither. The name starts with `_myc` (reserved: the
 * router refuses policies for such tables, so no statement can reach it) but not `_myc_` (the storage
 * layer's own prefix, which its user-statement guard refuses).
 */
export const migrationsTable = "_mycelium_migrations";

const createTable =
  `CREATE TABLE IF NOT EXISTS ${migrationsTable} (position BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, table_name TEXT NOT NULL, schema_version BIGINT NOT NULL, applied_at_ms BIGINT NOT NULL)`;

interface ShardRecord {
  /** When it was read from the shard (or written by apply). */
  atMs: number;
  table: string;
  version: number;
  appliedCount: number;
  lastMigrationId: string;
  ids: Set<string>;
}

/** Versioned DDL on this node's shards, and the schema state each shard reports in heartbeats. */
export class SchemaVersions {
  private readonly records = new Map<string, ShardRecord>();
  /** One schema change at a time per shard: two deliveries of one migration must not both run it. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: ShardStore,
    private readonly faults: FaultPoints = FaultPoints.none(),
    private readonly log?: Logger,
    /**
     * How long a shard's record is trusted before it is read again: a secondary's record also changes
     * when replication applies the primary's schema change underneath. @default 5000
     */
    private readonly maxAgeMs = 5000,
  ) {}

  /**
   * Apply one migration's DDL to one shard and record it there, unless the shard already recorded this
   * migration (then nothing runs: `already_applied`). A shard at another version than `from_version`
   * refuses (FAILED_PRECONDITION, SCHEMA_VERSION): migrations apply in order.
   */
  apply(shardId: string, request: nodeagent.ApplySchemaRequest): Promise<nodeagent.ApplySchemaResponse> {
    if (!request.migrationId) throw new MyceliumError("INVALID_ARGUMENT", "migration_id is required for versioned DDL");
    if (request.ddl.length === 0) throw new MyceliumError("INVALID_ARGUMENT", `migration ${request.migrationId} has no statements for shard ${shardId}`);
    const previous = this.chains.get(shardId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.applyNow(shardId, request));
    const tail = run.catch(() => undefined);
    this.chains.set(shardId, tail);
    void tail.then(() => {
      if (this.chains.get(shardId) === tail) this.chains.delete(shardId);
    });
    return run;
  }

  private async applyNow(shardId: string, request: nodeagent.ApplySchemaRequest): Promise<nodeagent.ApplySchemaResponse> {
    try {
      await this.store.ensureShard(shardId);
      const record = await this.load(shardId, request.table);
      if (record.ids.has(request.migrationId)) {
        return nodeagent.ApplySchemaResponse.create({ alreadyApplied: true, schema: toState(record) });
      }
      if (record.version !== request.fromVersion) {
        throw new MyceliumError(
          "FAILED_PRECONDITION",
          `shard ${shardId} has schema version ${record.version} of ${record.table || request.table} (last migration ${record.lastMigrationId || "none"}); migration ${request.migrationId} applies to version ${request.fromVersion}`,
          { reason: "SCHEMA_VERSION", details: { shardId, version: String(record.version), fromVersion: String(request.fromVersion) } },
        );
      }
      this.faults.hit("node.before-apply-schema");
      const atMs = Date.now();
      // Marked unknown first: if the commit's outcome is unclear (connection lost), read it again next time.
      this.records.delete(shardId);
      await this.store.applySchema(shardId, [...request.ddl, createTable, recordStatement(request, atMs)]);
      const applied: ShardRecord = {
        atMs: Date.now(),
        table: request.table,
        version: Number(request.schemaVersion),
        appliedCount: record.appliedCount + 1,
        lastMigrationId: request.migrationId,
        ids: new Set([...record.ids, request.migrationId]),
      };
      this.records.set(shardId, applied);
      this.log?.info({ shardId, migrationId: request.migrationId, schemaVersion: applied.version }, "migration applied");
      return nodeagent.ApplySchemaResponse.create({ alreadyApplied: false, schema: toState(applied) });
    } catch (error) {
      if (isDbError(error)) this.records.delete(shardId);
      throw toMyceliumError(error, { shardId });
    }
  }

  /** The shard's schema as recorded in its database (read once, then kept up to date here). */
  async state(shardId: string, table: string): Promise<common.ShardSchemaState> {
    return toState(await this.load(shardId, table));
  }

  /** For the heartbeat: each held shard's schema state. Shards that cannot be read are left out. */
  async report(shards: ReadonlyArray<{ shardId: string; table: string }>): Promise<common.ShardReplica[]> {
    const replicas: common.ShardReplica[] = [];
    for (const { shardId, table } of shards) {
      try {
        replicas.push(common.ShardReplica.create({ shardId, schema: await this.state(shardId, table) }));
      } catch (error) {
        this.log?.debug({ err: error, shardId }, "schema state not readable yet");
      }
    }
    return replicas;
  }

  /** Forget what is cached for a shard (its schema changed through the change log). */
  invalidate(shardId: string): void {
    this.records.delete(shardId);
  }

  private async load(shardId: string, table: string): Promise<ShardRecord> {
    const known = this.records.get(shardId);
    if (known && Date.now() - known.atMs < this.maxAgeMs) return known;
    let rows: unknown[][] = [];
    try {
      rows = (await this.store.read(shardId, `SELECT position, id, table_name, schema_version FROM ${migrationsTable} ORDER BY position`)).rows as unknown[][];
    } catch (error) {
      // No record table yet: the shard has run no versioned DDL.
      if (!isDbError(error, "NO_SUCH_TABLE")) throw error;
    }
    const last = rows[rows.length - 1];
    const record: ShardRecord = {
      atMs: Date.now(),
      table: last ? String(last[2]) : table,
      version: last ? Number(last[3]) : 0,
      appliedCount: last ? Number(last[0]) : 0,
      lastMigrationId: last ? String(last[1]) : "",
      ids: new Set(rows.map((row) => String(row[1]))),
    };
    this.records.set(shardId, record);
    return record;
  }
}

function recordStatement(request: nodeagent.ApplySchemaRequest, atMs: number): string {
  return (
    `INSERT INTO ${migrationsTable} (position, id, table_name, schema_version, applied_at_ms) ` +
    `SELECT COALESCE(MAX(position), 0) + 1, ${quote(request.migrationId)}, ${quote(request.table)}, ${Number(request.schemaVersion)}, ${atMs} FROM ${migrationsTable}`
  );
}

/** A SQL string literal (the same in SQLite and PostgreSQL with standard_conforming_strings). */
export function quote(text: string): string {
  if (text.includes("\0")) throw new MyceliumError("INVALID_ARGUMENT", "migration ids and table names may not contain NUL");
  return `'${text.replace(/'/g, "''")}'`;
}

function toState(record: ShardRecord): common.ShardSchemaState {
  return common.ShardSchemaState.create({ table: record.table, version: record.version, appliedCount: record.appliedCount, lastMigrationId: record.lastMigrationId });
}
