export { startCoordinator, type RunningCoordinator, type CoordinatorStartOptions } from "./service";
export { TransactionManager } from "./transaction-manager";
export { planCommit, TransactionRecord, canTransition, type TransactionState, type Participant, type CommitPlan } from "./core/transaction-state";
export { mergeResults } from "./core/merge";
export { coordinatorAuthorization } from "./rpc/authorization";
