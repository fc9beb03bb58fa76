import type { ControlStore } from "../control-store";
import { TopologyError } from "../topology-error";
import { jsonCodec, Repository, type Versioned, type WriteResult } from "./repository";

/** A table's schema at one version: the DDL that creates it on a shard. */
export interface TableSchema {
  table: string;
  /** Increases by one with every migration. */
  version: number;
  /** Statements that bring an empty shard to this version. */
  statements: string[];
  /** The migration that led here from version - 1 (empty for version 1). */
  migration: string[];
  updatedAtMs: number;
}

/** The schema version a node has applied to its shards of a table. */
export interface AppliedSchema {
  table: string;
  nodeId: string;
  version: number;
  atMs: number;
}

/**
 * Table schemas and versions: `schemas/<table>` → TableSchema, `schema-applied/<table>/<nodeId>` →
 * AppliedSchema (JSON; there is no protobuf message for these).
 */
export class SchemaStore {
  private readonly schemas: Repository<TableSchema>;

  constructor(private readonly store: ControlStore) {
    this.schemas = new Repository(store, "schemas/", jsonCodec<TableSchema>());
  }

  private applied(table: string): Repository<AppliedSchema> {
    return new Repository(this.store, `schema-applied/${encodeURIComponent(table)}/`, jsonCodec<AppliedSchema>());
  }

  async get(table: string): Promise<(TableSchema & { storeVersion: number }) | null> {
    const found = await this.schemas.get(table);
    return found ? { ...found.value, storeVersion: found.version } : null;
  }

  async list(): Promise<TableSchema[]> {
    return (await this.schemas.list()).map((found) => found.value);
  }

  /**
   * Moves a table to `schema.version`, which must be exactly one above the stored version (or 1 for a new
   * table); `expectedStoreVersion` is the control-store version read with it (0 for a new table).
   */
  async put(schema: TableSchema, expectedStoreVersion: number): Promise<WriteResult> {
    const current = await this.schemas.get(schema.table);
    const wanted = (current?.value.version ?? 0) + 1;
    if (current && current.version !== expectedStoreVersion) return { ok: false, actualVersion: current.version };
    if (schema.version !== wanted) {
      throw new TopologyError("INVALID_ARGUMENT", `table ${schema.table} is at schema version ${wanted - 1}; the next version is ${wanted}, not ${schema.version}`);
    }
    return this.schemas.put(schema.table, schema, expectedStoreVersion);
  }

  async recordApplied(applied: AppliedSchema): Promise<void> {
    await this.applied(applied.table).put(applied.nodeId, applied);
  }

  async appliedVersions(table: string): Promise<AppliedSchema[]> {
    return (await this.applied(table).list()).map((found) => found.value);
  }
}

/** What one migration does to one table. */
export interface MigrationTableChange {
  table: string;
  statements: string[];
  /** The table's schema version before (0: absent) and after (0: dropped). */
  fromVersion: number;
  toVersion: number;
}

/**
 * One migration and its progress (`migrations/<id>`). A migration is `applying` from the moment it is
 * started until every copy of every shard of its tables has it; `done` names those copies.
 */
export interface MigrationRecord {
  id: string;
  /** Order among migration files; 0 for ad-hoc DDL. */
  number: number;
  name: string;
  /** SHA-256 (hex) of the statements. */
  checksum: string;
  statements: string[];
  /** DDL run through TransactionService rather than a migration file. */
  adHoc: boolean;
  tables: MigrationTableChange[];
  /** `<shardId>@<nodeId>` → when that copy was seen to have the migration. */
  done: Record<string, number>;
  state: "applying" | "applied";
  startedAtMs: number;
  appliedAtMs: number | null;
}

/** The schema a copy of a shard holds (`schema-replicas/<shardId>/<nodeId>`), as its node recorded it. */
export interface ReplicaSchemaRecord {
  shardId: string;
  nodeId: string;
  table: string;
  /** The table's schema version on this copy; 0 when the table does not exist there. */
  version: number;
  /** Migrations the copy has applied; never decreases while the copy exists, so stale reports lose. */
  appliedCount: number;
  lastMigrationId: string;
  atMs: number;
}

export function replicaKey(shardId: string, nodeId: string): string {
  return `${shardId}@${nodeId}`;
}

/**
 * Migrations and the schema version of every copy of every shard (the part of SchemaStore that schema
 * versioning uses; the router keeps table schemas themselves under `router/schemas/`).
 */
export class MigrationStore {
  private readonly migrations: Repository<MigrationRecord>;
  private readonly replicas: Repository<ReplicaSchemaRecord>;

  constructor(private readonly store: ControlStore) {
    this.migrations = new Repository(store, "migrations/", jsonCodec<MigrationRecord>());
    this.replicas = new Repository(store, "schema-replicas/", jsonCodec<ReplicaSchemaRecord>());
  }

  async getMigration(id: string): Promise<Versioned<MigrationRecord> | null> {
    return this.migrations.get(id);
  }

  /** Every recorded migration, in the order they were started. */
  async listMigrations(): Promise<MigrationRecord[]> {
    return (await this.migrations.list()).map((found) => found.value).sort((a, b) => a.startedAtMs - b.startedAtMs || a.number - b.number || (a.id < b.id ? -1 : 1));
  }

  /** Records a new migration; false when one with this id exists already. */
  async createMigration(record: MigrationRecord): Promise<boolean> {
    return (await this.migrations.put(record.id, record, 0)).ok;
  }

  /** Read-modify-write of a migration record (compare-and-set, retried on a concurrent change). */
  async updateMigration(id: string, change: (current: MigrationRecord) => MigrationRecord | null): Promise<MigrationRecord | null> {
    const updated = await this.migrations.update(id, (current) => (current ? change(current.value) : undefined));
    return updated?.value ?? null;
  }

  async deleteMigration(id: string): Promise<void> {
    await this.migrations.delete(id);
  }

  /**
   * Stores what copies report about their schema. A report whose appliedCount is not above the stored
   * one changes nothing (a heartbeat sent before a migration cannot overwrite what the migration
   * recorded); use forgetReplica when a copy is re-created from scratch. Returns how many changed.
   */
  async recordReplicas(records: readonly ReplicaSchemaRecord[]): Promise<number> {
    let changed = 0;
    for (const record of records) {
      let wrote = false;
      await this.replicas.update(`${record.shardId}/${record.nodeId}`, (current) => {
        wrote = !current || current.value.appliedCount < record.appliedCount;
        return wrote ? record : undefined;
      });
      if (wrote) changed += 1;
    }
    return changed;
  }

  async listReplicas(): Promise<ReplicaSchemaRecord[]> {
    return (await this.replicas.list()).map((found) => found.value);
  }

  async forgetReplica(shardId: string, nodeId: string): Promise<void> {
    await this.replicas.delete(`${shardId}/${nodeId}`);
  }
}
