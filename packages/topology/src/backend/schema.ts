import { type Kysely, sql } from "kysely";

/** The control store's tables (Kysely types). Integers are ms or revisions, all below 2^53. */
export interface ControlTables {
  control_meta: { id: number; revision: number; schema_version: number };
  kv: { key: string; value: Uint8Array; is_text: number | boolean; version: number };
  leases: { name: string; holder: string; expires_at_ms: number; token: number };
  decisions: {
    tx_id: string;
    decision: string;
    coordinator_id: string;
    decided_at_ms: number;
    completed_at_ms: number | null;
  };
  decision_participants: { tx_id: string; shard_id: string; node_id: string; epoch: number; done_at_ms: number | null };
}

export const schemaVersion = 1;

/**
 * Creates the tables if missing. Runs inside a write transaction that excludes other creators (SQLite:
 * BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so two processes opening a new store at once do not race.
 */
export async function createTables(db: Kysely<ControlTables>, dialect: "sqlite" | "postgres"): Promise<void> {
  const bytes = dialect === "postgres" ? "bytea" : "blob";
  // Keys compare byte-wise on both backends, so prefix ranges mean the same thing everywhere.
  const keyType = dialect === "postgres" ? sql`text collate "C"` : sql`text`;
  const boolean = dialect === "postgres" ? "boolean" : "integer";
  await db.schema
    .createTable("control_meta")
    .ifNotExists()
    .addColumn("id", "integer", (column) => column.primaryKey())
    .addColumn("revision", "bigint", (column) => column.notNull())
    .addColumn("schema_version", "integer", (column) => column.notNull())
    .execute();
  await db.schema
    .createTable("kv")
    .ifNotExists()
    .addColumn("key", keyType, (column) => column.primaryKey())
    .addColumn("value", bytes, (column) => column.notNull())
    .addColumn("is_text", boolean, (column) => column.notNull())
    .addColumn("version", "bigint", (column) => column.notNull())
    .execute();
  await db.schema
    .createTable("leases")
    .ifNotExists()
    .addColumn("name", "text", (column) => column.primaryKey())
    .addColumn("holder", "text", (column) => column.notNull())
    .addColumn("expires_at_ms", "bigint", (column) => column.notNull())
    .addColumn("token", "bigint", (column) => column.notNull())
    .execute();
  await db.schema
    .createTable("decisions")
    .ifNotExists()
    .addColumn("tx_id", "text", (column) => column.primaryKey())
    .addColumn("decision", "text", (column) => column.notNull().check(sql`decision in ('commit', 'abort')`))
    .addColumn("coordinator_id", "text", (column) => column.notNull())
    .addColumn("decided_at_ms", "bigint", (column) => column.notNull())
    .addColumn("completed_at_ms", "bigint")
    .execute();
  await db.schema.createIndex("decisions_completed").ifNotExists().on("decisions").column("completed_at_ms").execute();
  await db.schema
    .createTable("decision_participants")
    .ifNotExists()
    .addColumn("tx_id", "text", (column) => column.notNull().references("decisions.tx_id").onDelete("cascade"))
    .addColumn("shard_id", "text", (column) => column.notNull())
    .addColumn("node_id", "text", (column) => column.notNull())
    .addColumn("epoch", "bigint", (column) => column.notNull())
    .addColumn("done_at_ms", "bigint")
    .addPrimaryKeyConstraint("decision_participants_pk", ["tx_id", "shard_id"])
    .execute();
  await db
    .insertInto("control_meta")
    .values({ id: 1, revision: 0, schema_version: schemaVersion })
    .onConflict((conflict) => conflict.column("id").doNothing())
    .execute();
}
