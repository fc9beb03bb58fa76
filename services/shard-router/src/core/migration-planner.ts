import { router } from "@mycelium/proto";
import { isMyceliumError, MyceliumError } from "@mycelium/rpc";
import type { Analysis } from "@mycelium/sql";
import { planDdl, type RoutingSnapshot } from "./route-planner";
import { TableLayout, type TableSchema } from "./table-layout";

export interface MigrationSpec {
  id: string;
  statements: readonly string[];
}

/**
 * Check a list of migrations against the current schemas, in order, as if each were applied: every
 * statement must be DDL the router accepts (planDdl's rules: a policy exists, CREATE TABLE has a primary
 * key that includes the shard key, ALTER names an existing table, ...) against the schema the earlier
 * statements leave. Returns, per migration, its statements per table and the version each table moves
 * from and to — the same versions RecordSchema will assign (one step per migration; 0 once dropped).
 * Tables without a policy are all reported at once. Pure: changes nothing.
 */
export function planMigrations(migrations: readonly MigrationSpec[], snapshot: RoutingSnapshot, analyze: (sql: string) => Analysis): router.MigrationPlan[] {
  const schemas = new Map<string, TableSchema | null>();
  const overlay: RoutingSnapshot = {
    nodeAddress: (nodeId) => snapshot.nodeAddress(nodeId),
    layout: (table) => {
      const base = snapshot.layout(table);
      if (!base || !schemas.has(table)) return base;
      return new TableLayout(base.policy, base.shards, schemas.get(table) ?? null);
    },
  };
  const schemaOf = (table: string): TableSchema | null => (schemas.has(table) ? (schemas.get(table) ?? null) : (snapshot.layout(table)?.schema ?? null));
  const missingPolicies = new Map<string, string[]>();
  const plans: router.MigrationPlan[] = [];

  for (const migration of migrations) {
    if (migration.statements.length === 0) throw invalid(`migration ${migration.id} has no statements`, "EMPTY_MIGRATION");
    const changes = new Map<string, { statements: string[]; fromVersion: number }>();
    migration.statements.forEach((sql, index) => {
      const where = `migration ${migration.id}, statement ${index + 1}`;
      let analysis: Analysis;
      try {
        analysis = analyze(sql);
      } catch (error) {
        throw prefixed(error, where);
      }
      const ddl = analysis.ddl;
      if (analysis.kind !== "ddl" || !ddl) {
        throw invalid(`${where} is not DDL (${analysis.kind.toUpperCase()}): migrations change schemas only; change data with SQL statements`, "NOT_DDL");
      }
      if (ddl.table && !snapshot.layout(ddl.table)) {
        const ids = missingPolicies.get(ddl.table) ?? [];
        if (!ids.includes(migration.id)) ids.push(migration.id);
        missingPolicies.set(ddl.table, ids);
        return;
      }
      try {
        planDdl({ sql, params: [], analysis }, overlay);
      } catch (error) {
        throw prefixed(error, where);
      }
      const table = ddl.table!;
      const change = changes.get(table) ?? { statements: [], fromVersion: schemaOf(table)?.version ?? 0 };
      change.statements.push(sql);
      changes.set(table, change);
      schemas.set(table, nextSchema(schemaOf(table), sql, analysis));
    });
    const tables = [...changes].map(([table, change]) => {
      const after = schemaOf(table);
      const toVersion = after ? change.fromVersion + 1 : 0;
      if (after) schemas.set(table, { ...after, version: toVersion });
      return router.TableChange.create({ table, statements: change.statements, fromVersion: change.fromVersion, toVersion });
    });
    plans.push(router.MigrationPlan.create({ id: migration.id, tables }));
  }

  if (missingPolicies.size > 0) {
    const list = [...missingPolicies].map(([table, ids]) => `${table} (${ids.join(", ")})`).join(", ");
    throw new MyceliumError(
      "FAILED_PRECONDITION",
      `migrations use tables that have no sharding policy: ${list}; set each first with \`mycelium policy set <table> --shard-keys <columns>\`. Nothing was applied.`,
      { reason: "NO_POLICY", details: { tables: [...missingPolicies.keys()].join(",") } },
    );
  }
  return plans;
}

/** The table's schema after one DDL statement (mirrors ShardRouter.recordSchema). */
export function nextSchema(schema: TableSchema | null, sql: string, analysis: Analysis): TableSchema | null {
  const info = analysis.ddl!;
  const table = info.table!;
  if (info.action === "create_table") {
    if (schema && info.ifNotExists) return schema;
    return { table, columns: info.columns ?? [], primaryKey: info.primaryKey ?? [], ddl: [sql], version: schema?.version ?? 0 };
  }
  if (info.action === "drop_table") return null;
  if (!schema) return null;
  return { ...schema, columns: [...schema.columns, ...(info.addedColumns ?? [])], ddl: [...schema.ddl, sql] };
}

function prefixed(error: unknown, where: string): MyceliumError {
  if (isMyceliumError(error)) return new MyceliumError(error.code, `${where}: ${error.message}`, { ...(error.reason ? { reason: error.reason } : {}), details: error.details });
  const code = (error as { code?: unknown })?.code;
  return new MyceliumError("INVALID_ARGUMENT", `${where}: ${(error as Error).message}`, typeof code === "string" ? { reason: code } : {});
}

function invalid(message: string, reason: string): MyceliumError {
  return new MyceliumError("INVALID_ARGUMENT", message, { reason });
}
