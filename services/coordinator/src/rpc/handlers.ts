import { common, coordinator } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import { asCaller } from "../access-control";
import type { TransactionState } from "../core/transaction-state";
import { SubscriberOverflow } from "../core/events";
import type { Recovery } from "../recovery";
import type { TransactionManager } from "../transaction-manager";

const states: Record<TransactionState | "none", coordinator.TransactionState> = {
  none: coordinator.TransactionState.TRANSACTION_STATE_UNSPECIFIED,
  active: coordinator.TransactionState.TRANSACTION_STATE_ACTIVE,
  preparing: coordinator.TransactionState.TRANSACTION_STATE_PREPARING,
  prepared: coordinator.TransactionState.TRANSACTION_STATE_PREPARED,
  committing: coordinator.TransactionState.TRANSACTION_STATE_COMMITTING,
  committed: coordinator.TransactionState.TRANSACTION_STATE_COMMITTED,
  aborting: coordinator.TransactionState.TRANSACTION_STATE_ABORTING,
  aborted: coordinator.TransactionState.TRANSACTION_STATE_ABORTED,
};

function statementOf(statement: common.Statement | undefined): common.Statement {
  if (!statement || !statement.sql.trim()) throw new MyceliumError("INVALID_ARGUMENT", "statement.sql is empty");
  return statement;
}

export function transactionHandlers(manager: TransactionManager): ServiceHandlers<typeof coordinator.TransactionServiceService> {
  return {
    async begin(request) {
      return coordinator.BeginResponse.create({ txId: manager.begin(request.timeoutMs, false, request.readCommitted) });
    },
    // Statements are routed (and their privileges checked, access-control.ts) as the caller.
    async execute(request, call) {
      return coordinator.ExecuteResponse.create({ result: await asCaller(call.identity, () => manager.execute(request.txId, statementOf(request.statement))) });
    },
    async addOperation(request) {
      return coordinator.AddOperationResponse.create({ queued: await manager.addOperation(request.txId, statementOf(request.statement)) });
    },
    async commit(request, call) {
      const results = await asCaller(call.identity, () => manager.commit(request.txId));
      return coordinator.CommitResponse.create({ results, state: coordinator.TransactionState.TRANSACTION_STATE_COMMITTED });
    },
    async rollback(request) {
      await manager.rollback(request.txId);
      return coordinator.RollbackResponse.create({});
    },
    async executeTransaction(request, call) {
      const { txId, results } = await asCaller(call.identity, () => manager.executeTransaction(request.statements.map((s) => statementOf(s))));
      return coordinator.ExecuteTransactionResponse.create({ txId, results });
    },
    async *subscribe(request, call) {
      const subscription = manager.events.subscribe(request.txId || null);
      call.signal.addEventListener("abort", () => subscription.close(), { once: true });
      try {
        for await (const event of subscription) {
          if (event.type === "state_changed") {
            yield coordinator.SubscribeResponse.create({
              event: { $case: "stateChanged", value: { txId: event.txId, oldState: states[event.oldState], newState: states[event.newState] } },
              sequence: event.sequence,
              atMs: event.atMs,
            });
          } else {
            yield coordinator.SubscribeResponse.create({
              event: { $case: "completed", value: { txId: event.txId, success: event.success, durationMs: event.durationMs } },
              sequence: event.sequence,
              atMs: event.atMs,
            });
          }
        }
      } catch (error) {
        if (error instanceof SubscriberOverflow) throw new MyceliumError("RESOURCE_EXHAUSTED", error.message, { reason: "SUBSCRIBER_TOO_SLOW" });
        throw error;
      }
    },
    async explain(request, call) {
      return coordinator.ExplainResponse.create({ plan: await asCaller(call.identity, () => manager.explain(statementOf(request.statement))) });
    },
  };
}

export function decisionHandlers(recovery: Recovery): ServiceHandlers<typeof coordinator.DecisionServiceService> {
  return {
    async getDecision(request, call) {
      if (!request.txId) throw new MyceliumError("INVALID_ARGUMENT", "tx_id is required");
      return coordinator.GetDecisionResponse.create({ decision: await recovery.decisionFor(request.txId, request.shardId, call.identity.name) });
    },
  };
}

export function adminHandlers(recovery: Recovery): ServiceHandlers<typeof coordinator.TransactionAdminServiceService> {
  return {
    async listInDoubt() {
      return coordinator.ListInDoubtResponse.create({ transactions: await recovery.listInDoubt() });
    },
    async getTransaction(request) {
      return coordinator.GetTransactionResponse.create({ transaction: await recovery.describe(request.txId, true) });
    },
    async forceResolve(request) {
      const nodeIds = new Map<string, string>();
      const shardIds = request.shardIds.map((entry) => {
        const [shardId = "", nodeId = ""] = entry.split("=");
        if (nodeId) nodeIds.set(shardId, nodeId);
        return shardId;
      });
      return coordinator.ForceResolveResponse.create({ transaction: await recovery.forceResolve(request.txId, request.decision, shardIds, nodeIds) });
    },
  };
}
