import { coordinator, nodeagent } from "@mycelium/proto";
import { isMyceliumError, MyceliumError } from "@mycelium/rpc";
import type { Logger, Telemetry } from "@mycelium/telemetry";
import type { DecisionLog, DecisionRecord } from "@mycelium/topology";
import type { ClusterClient } from "./adapters/cluster-client";
import type { TransactionManager } from "./transaction-manager";

export interface RecoveryOptions {
  coordinatorId: string;
  decisions: DecisionLog;
  cluster: ClusterClient;
  transactions: TransactionManager;
  telemetry: Telemetry;
  commitTimeoutMs: number;
  /** Undecided records newer than this are left to the coordinator committing them right now. */
  graceMs: number;
}

/**
 * Finishing what was decided, by anyone: any coordinator replica delivers the decision of every
 * transaction whose participants have not all acknowledged (after a crash of the one that decided
 * it). Also answers participants asking for a decision, and serves operators.
 */
export class Recovery {
  private readonly log: Logger;
  private readonly inDoubtGauge;
  private readonly resolved;

  constructor(private readonly options: RecoveryOptions) {
    this.log = options.telemetry.logger.child({ component: "recovery" });
    this.inDoubtGauge = options.telemetry.metrics.gauge({ name: "mycelium_transactions_in_doubt", help: "Decided transactions not yet acknowledged by every participant." });
    this.resolved = options.telemetry.metrics.counter({ name: "mycelium_transactions_recovered_total", help: "Participants brought to the recorded decision by recovery, by decision.", labelNames: ["decision"] as const });
  }

  /** One pass over every undone decision; returns how many participants were brought up to date. */
  async finishUndone(signal?: AbortSignal): Promise<number> {
    const undone = await this.options.decisions.listUndone(1000);
    this.inDoubtGauge.set(undone.length);
    const cutoff = Date.now() - this.options.graceMs;
    let delivered = 0;
    for (const record of undone) {
      if (signal?.aborted) break;
      if (record.decidedAtMs > cutoff || this.options.transactions.localState(record.txId)) continue;
      delivered += await this.deliver(record);
    }
    return delivered;
  }

  private async deliver(record: DecisionRecord): Promise<number> {
    const done: Array<{ txId: string; shardId: string }> = [];
    for (const participant of record.participants.filter((p) => !p.done)) {
      // The shard's current primary: after a failover, the node that took the prepared transaction over.
      const current = await this.options.cluster.shardPrimary(participant.shardId).catch(() => undefined);
      const address = current?.address ?? (await this.options.cluster.nodeAddress(participant.nodeId).catch(() => undefined));
      if (!address) continue;
      const node = this.options.cluster.node(address);
      const shard = { shardId: participant.shardId, epoch: current?.epoch ?? participant.epoch };
      try {
        if (record.decision === "commit") {
          await node.commit(nodeagent.CommitRequest.create({ txId: record.txId, shard }), { deadlineMs: this.options.commitTimeoutMs, idempotent: true });
        } else {
          await node.abort(nodeagent.AbortRequest.create({ txId: record.txId, shard }), { deadlineMs: this.options.commitTimeoutMs, idempotent: true });
        }
        done.push({ txId: record.txId, shardId: participant.shardId });
        this.resolved.inc({ decision: record.decision });
      } catch (error) {
        // A commit to a participant that already rolled back is a broken invariant: report it loudly.
        if (record.decision === "commit" && isMyceliumError(error) && error.reason === "NOT_PREPARED") {
          this.log.error({ txId: record.txId, shardId: participant.shardId }, "participant has no prepared transaction for a recorded COMMIT; operator attention needed");
        } else {
          this.log.warn({ err: error, txId: record.txId, shardId: participant.shardId }, "could not deliver decision; will retry");
        }
      }
    }
    if (done.length > 0) await this.options.decisions.markParticipantsDone(done);
    return done.length;
  }

  /**
   * The decision for a participant that asks. No record and no live transaction here means abort
   * (presumed abort) — recorded first, so the coordinator that owns the transaction can no longer
   * record COMMIT for it.
   */
  async decisionFor(txId: string, shardId: string, askingNode: string): Promise<coordinator.Decision> {
    const existing = await this.options.decisions.getDecision(txId);
    if (existing) return existing.decision === "commit" ? coordinator.Decision.DECISION_COMMIT : coordinator.Decision.DECISION_ABORT;
    const local = this.options.transactions.localState(txId);
    if (local && local !== "aborted") return coordinator.Decision.DECISION_PENDING;
    const [result] = await this.options.decisions.recordDecisions([
      { txId, decision: "abort", participants: [{ shardId, nodeId: askingNode, epoch: 0 }], coordinatorId: this.options.coordinatorId, atMs: Date.now() },
    ]);
    const decision = result && !result.ok ? result.existing : "abort";
    this.log.info({ txId, shardId, askingNode, decision }, "answered a participant without a decision record");
    if (decision === "abort") await this.options.decisions.markParticipantDone(txId, shardId);
    return decision === "commit" ? coordinator.Decision.DECISION_COMMIT : coordinator.Decision.DECISION_ABORT;
  }

  async describe(txId: string, withStatements: boolean): Promise<coordinator.TransactionInfo> {
    const record = await this.options.decisions.getDecision(txId);
    const local = this.options.transactions.localState(txId);
    if (!record && !local) throw new MyceliumError("NOT_FOUND", `no record of transaction ${txId}: it never prepared, or it finished and was pruned`, { reason: "NO_TRANSACTION" });
    const participants = await Promise.all(
      (record?.participants ?? []).map(async (p) => {
        const info = coordinator.ParticipantStatus.create({ shardId: p.shardId, nodeId: p.nodeId, epoch: p.epoch, done: p.done });
        if (withStatements && !p.done) await this.attachStatements(info, txId);
        return info;
      }),
    );
    return coordinator.TransactionInfo.create({
      txId,
      state: stateOf(record, local),
      decision: record ? (record.decision === "commit" ? coordinator.Decision.DECISION_COMMIT : coordinator.Decision.DECISION_ABORT) : coordinator.Decision.DECISION_PENDING,
      coordinatorId: record?.coordinatorId ?? this.options.coordinatorId,
      decidedAtMs: record?.decidedAtMs ?? 0,
      participants,
    });
  }

  async listInDoubt(): Promise<coordinator.TransactionInfo[]> {
    const undone = await this.options.decisions.listUndone(1000);
    return Promise.all(undone.map((record) => this.describe(record.txId, true)));
  }

  /** An operator decides a transaction nobody decided; a recorded decision cannot be overturned. */
  async forceResolve(txId: string, decision: coordinator.Decision, shardIds: string[], nodeIds: Map<string, string>): Promise<coordinator.TransactionInfo> {
    if (decision !== coordinator.Decision.DECISION_COMMIT && decision !== coordinator.Decision.DECISION_ABORT) {
      throw new MyceliumError("INVALID_ARGUMENT", "decision must be COMMIT or ABORT");
    }
    if (this.options.transactions.localState(txId)) {
      throw new MyceliumError("FAILED_PRECONDITION", `transaction ${txId} is still running on this coordinator; wait for it`, { reason: "STILL_RUNNING" });
    }
    const wanted = decision === coordinator.Decision.DECISION_COMMIT ? "commit" : "abort";
    const existing = await this.options.decisions.getDecision(txId);
    if (existing && existing.decision !== wanted) {
      throw new MyceliumError("FAILED_PRECONDITION", `transaction ${txId} is already decided ${existing.decision.toUpperCase()}; a decision cannot be changed`, { reason: "ALREADY_DECIDED" });
    }
    if (!existing) {
      const participants = shardIds.map((shardId) => ({ shardId, nodeId: nodeIds.get(shardId) ?? "", epoch: 0 }));
      if (participants.some((p) => !p.nodeId)) throw new MyceliumError("INVALID_ARGUMENT", "name the node of every shard (shard=node) when the coordinator has no record of the transaction");
      const [result] = await this.options.decisions.recordDecisions([{ txId, decision: wanted, participants, coordinatorId: `${this.options.coordinatorId}/operator`, atMs: Date.now() }]);
      if (result && !result.ok) throw new MyceliumError("FAILED_PRECONDITION", `transaction ${txId} was decided ${result.existing.toUpperCase()} meanwhile`, { reason: "ALREADY_DECIDED" });
    }
    this.log.warn({ txId, decision: wanted }, "transaction force-resolved by an operator");
    const record = await this.options.decisions.getDecision(txId);
    if (record) await this.deliver(record);
    return this.describe(txId, false);
  }

  private async attachStatements(info: coordinator.ParticipantStatus, txId: string): Promise<void> {
    try {
      const address = await this.options.cluster.nodeAddress(info.nodeId);
      if (!address) throw new Error(`node ${info.nodeId} is not registered`);
      const response = await this.options.cluster.node(address).listPrepared(nodeagent.ListPreparedRequest.create({}), { deadlineMs: 5000, idempotent: true });
      const prepared = response.transactions.find((t) => t.txId === txId && t.shardId === info.shardId);
      info.statements = prepared?.statements ?? [];
      if (!prepared) info.error = "not prepared on the node (already resolved there)";
    } catch (error) {
      info.error = (error as Error).message;
    }
  }
}

function stateOf(record: DecisionRecord | null, local: string | undefined): coordinator.TransactionState {
  if (local) return local === "committing" ? coordinator.TransactionState.TRANSACTION_STATE_COMMITTING : coordinator.TransactionState.TRANSACTION_STATE_ACTIVE;
  if (!record) return coordinator.TransactionState.TRANSACTION_STATE_UNSPECIFIED;
  const done = record.participants.every((p) => p.done);
  if (record.decision === "commit") return done ? coordinator.TransactionState.TRANSACTION_STATE_COMMITTED : coordinator.TransactionState.TRANSACTION_STATE_COMMITTING;
  return done ? coordinator.TransactionState.TRANSACTION_STATE_ABORTED : coordinator.TransactionState.TRANSACTION_STATE_ABORTING;
}
