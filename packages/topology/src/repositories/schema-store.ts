import type { ControlStore } from "../control-store";
import { TopologyError } from "../topology-error";
import { jsonCodec, Repository, type WriteResult } from "./repository";

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
