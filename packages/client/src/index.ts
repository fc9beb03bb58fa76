export { MyceliumClient, Transaction, type Params, type StatementInput, type TransactionEvent, type TransactionState } from "./client";
export { TransactionManager } from "./transaction-manager";
export { rowObjects, type QueryResult } from "./result";
export type { ClientOptions } from "./options";
export { MyceliumError, isMyceliumError, type ErrorCode } from "@mycelium/rpc";
export type { SqlValue } from "@mycelium/proto";
