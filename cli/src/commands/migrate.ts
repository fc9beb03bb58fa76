import type { Command } from "commander";
import { coordinator } from "@mycelium/proto";
import { resolveConnection, type ConnectionFlags } from "../local-cluster/cluster-info";
import { renderTable, toJson } from "../output/format";
import { withConnectionFlags } from "./connect";
import { readMigrationDir, type MigrationFile } from "./migration-files";
import { withAdmin } from "./policy";

interface MigrateOptions extends ConnectionFlags {
  dir?: string;
  dryRun?: boolean;
  json?: boolean;
  timeout?: string;
}

const help = `
Migration files are named <number>_<name>.sql (001_create_users.sql, 002_add_email.sql, ...) and hold DDL
statements separated by ;. They apply in number order to every copy of every shard of the tables they
change; each copy records the migrations it has, in its own database, in the same local transaction as
the DDL. Tables a migration creates need a sharding policy first (mycelium policy set).

A run that stops midway (a node down or killed) fails with MIGRATION_INCOMPLETE and names the copies that
are behind; those copies are not routed to (UNAVAILABLE, SCHEMA_VERSION) until the migration is finished.
Run migrate again to finish it: what is done is not repeated. An applied file must not change (a new
migration does the next change).

Examples:
  mycelium migrate --dir migrations            apply what is not applied yet
  mycelium migrate --dir migrations --dry-run  check and plan only
  mycelium migrate status --dir migrations     applied / partially applied / pending, and who is behind
  mycelium migrate                             finish unfinished migrations only`;

export function registerMigrate(program: Command): void {
  const migrate = withConnectionFlags(
    program
      .command("migrate")
      .description("apply numbered schema migration files to every shard copy (admin); `migrate status` shows progress")
      .option("--dir <dir>", "directory of migration files (<number>_<name>.sql)")
      .option("--dry-run", "check and plan only; change nothing")
      .option("--timeout <seconds>", "how long the run may take", "600")
      .option("--json", "print JSON")
      .addHelpText("after", help),
  ).action(async (options: MigrateOptions) => {
    await withAdmin(options, async (client) => {
      const files = options.dir ? readMigrationDir(options.dir) : [];
      const service = client.pool.service(coordinator.SchemaMigrationServiceService, resolveConnection(options, "admin").coordinatorAddress);
      const response = await service.applyMigrations(
        coordinator.ApplyMigrationsRequest.create({ migrations: files.map(toMigration), dryRun: Boolean(options.dryRun) }),
        { deadlineMs: Number(options.timeout ?? 600) * 1000 },
      );
      if (options.json) {
        process.stdout.write(toJson(coordinator.ApplyMigrationsResponse.toJSON(response)) + "\n");
        return;
      }
      if (response.migrations.length === 0) {
        process.stdout.write(files.length > 0 ? `all ${files.length} migrations are applied\n` : "nothing to do\n");
        return;
      }
      process.stdout.write(renderStatuses(response.migrations, options.dryRun ? "would apply" : null) + "\n");
      if (!options.dryRun) {
        process.stdout.write(`${response.replicasApplied} shard copies migrated, ${response.replicasSkipped} already had it\n`);
      }
    });
  });

  withConnectionFlags(
    migrate
      .command("status")
      .description("each migration: applied, partially applied (with the copies behind) or pending")
      .option("--dir <dir>", "directory of migration files, to list the pending ones too")
      .option("--json", "print JSON"),
  ).action(async (_options: MigrateOptions, command: Command) => {
    // `migrate` has the same options and takes them wherever they are written: read both levels.
    const options = command.optsWithGlobals<MigrateOptions>();
    await withAdmin(options, async (client) => {
      const files = options.dir ? readMigrationDir(options.dir) : [];
      const service = client.pool.service(coordinator.SchemaMigrationServiceService, resolveConnection(options, "admin").coordinatorAddress);
      const response = await service.getMigrationStatus(coordinator.GetMigrationStatusRequest.create({ migrations: files.map(toMigration) }), { idempotent: true });
      if (options.json) {
        process.stdout.write(toJson(coordinator.GetMigrationStatusResponse.toJSON(response)) + "\n");
        return;
      }
      process.stdout.write(response.migrations.length ? renderStatuses(response.migrations, null) + "\n" : "no migrations\n");
    });
  });
}

function toMigration(file: MigrationFile): coordinator.Migration {
  return coordinator.Migration.create({ id: file.id, number: file.number, name: file.name, statements: file.statements });
}

export function stateName(state: coordinator.MigrationState): string {
  switch (state) {
    case coordinator.MigrationState.MIGRATION_STATE_APPLIED:
      return "applied";
    case coordinator.MigrationState.MIGRATION_STATE_PARTIAL:
      return "partially applied";
    case coordinator.MigrationState.MIGRATION_STATE_PENDING:
      return "pending";
    default:
      return "unknown";
  }
}

function renderStatuses(statuses: readonly coordinator.MigrationStatus[], pendingLabel: string | null): string {
  const rows = statuses.map((s) => [
    s.adHoc ? `${s.id} (ad-hoc: ${s.statements[0] ?? ""})` : s.id,
    s.state === coordinator.MigrationState.MIGRATION_STATE_PENDING && pendingLabel ? pendingLabel : stateName(s.state),
    s.tables.map((t) => `${t.table} v${t.fromVersion}→v${t.toVersion}`).join(", "),
    s.replicasTotal ? `${s.replicasDone}/${s.replicasTotal}` : "",
  ]);
  const lines = [renderTable(["migration", "state", "tables", "copies done"], rows).split("\n").slice(0, -1).join("\n")];
  for (const s of statuses) {
    if (s.behind.length === 0) continue;
    lines.push(`${s.id}: behind —`);
    for (const b of s.behind) lines.push(`  ${b.shardId} on node ${b.nodeId} (${b.table} at version ${b.version})`);
  }
  return lines.join("\n");
}
