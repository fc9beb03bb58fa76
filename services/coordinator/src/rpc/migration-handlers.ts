import type { coordinator } from "@mycelium/proto";
import type { ServiceHandlers } from "@mycelium/rpc";
import type { SchemaMigrations } from "../migrations";

export function migrationHandlers(migrations: SchemaMigrations): ServiceHandlers<typeof coordinator.SchemaMigrationServiceService> {
  return {
    applyMigrations: (request) => migrations.apply(request),
    getMigrationStatus: (request) => migrations.status(request),
  };
}
