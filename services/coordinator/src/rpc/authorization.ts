import { coordinator } from "@mycelium/proto";
import { authorize } from "@mycelium/rpc";

const users = ["client", "admin"] as const;

export const coordinatorAuthorization = {
  ...authorize(coordinator.TransactionServiceService, {
    begin: users,
    execute: users,
    addOperation: users,
    commit: users,
    rollback: users,
    executeTransaction: users,
    subscribe: users,
    explain: users,
  }),
  // Only participants ask for decisions; only operators inspect or force them.
  ...authorize(coordinator.DecisionServiceService, { getDecision: ["node-agent"] }),
  ...authorize(coordinator.TransactionAdminServiceService, {
    listInDoubt: ["admin"],
    getTransaction: ["admin"],
    forceResolve: ["admin"],
  }),
  ...authorize(coordinator.SchemaMigrationServiceService, {
    applyMigrations: ["admin"],
    getMigrationStatus: ["admin"],
  }),
  ...authorize(coordinator.AccessControlServiceService, {
    grant: ["admin"],
    revoke: ["admin"],
    listGrants: ["admin"],
    setEnforcement: ["admin"],
  }),
};
