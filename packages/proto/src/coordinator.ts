export * from "./gen/mycelium/coordinator/v1/transaction_service";
export * from "./gen/mycelium/coordinator/v1/transaction_admin_service";
export * from "./gen/mycelium/coordinator/v1/schema_migration_service";
export * from "./gen/mycelium/coordinator/v1/access_control_service";
