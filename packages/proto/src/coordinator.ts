export * from "./gen/mycelium/coordinator/v1/transaction_service";
export * from "./gen/mycelium/coordinator/v1/transaction_admin_service";
