import { coordinator } from "@mycelium/proto";
import type { ClientPool, PromiseClient } from "@mycelium/rpc";
import type { ShardStore } from "@mycelium/db";
import type { Logger } from "@mycelium/telemetry";
import type { NodeAgent } from "../node-agent";

/**
 * A participant that voted yes and heard nothing asks for the decision. Any coordinator replica can
 * answer: decisions live in the shared control store, and a transaction without one is decided abort
 * (presumed abort) — the coordinator records that before answering, so it cannot later commit.
 */
export class DecisionInquirer {
  private readonly client: PromiseClient<typeof coordinator.DecisionServiceService>;

  constructor(
    clients: ClientPool,
    coordinatorAddress: string,
    private readonly store: ShardStore,
    private readonly core: NodeAgent,
    private readonly log: Logger,
    /** Prepared transactions younger than this are left to their coordinator. */
    private readonly inquireAfterMs: number,
  ) {
    this.client = clients.service(coordinator.DecisionServiceService, coordinatorAddress);
  }

  /** Ask about every prepared transaction older than inquireAfterMs; returns how many were resolved. */
  async resolveInDoubt(signal?: AbortSignal): Promise<number> {
    const prepared = await this.store.recoverPrepared();
    const cutoff = Date.now() - this.inquireAfterMs;
    let resolved = 0;
    for (const tx of prepared) {
      if (signal?.aborted) break;
      if (tx.preparedAtMs > cutoff) continue;
      const response = await this.client.getDecision(coordinator.GetDecisionRequest.create({ txId: tx.txId, shardId: tx.shardId }), { idempotent: true, deadlineMs: 5000 });
      const ref = { shardId: tx.shardId, epoch: 0 };
      if (response.decision === coordinator.Decision.DECISION_COMMIT) {
        await this.core.commit(tx.txId, ref);
        resolved++;
      } else if (response.decision === coordinator.Decision.DECISION_ABORT) {
        await this.core.abort(tx.txId, ref);
        resolved++;
      }
      if (response.decision !== coordinator.Decision.DECISION_PENDING) {
        this.log.info({ txId: tx.txId, shardId: tx.shardId, decision: coordinator.decisionToJSON(response.decision) }, "resolved in-doubt transaction");
      }
    }
    return resolved;
  }
}
