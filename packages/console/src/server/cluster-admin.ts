import type { MyceliumClient } from "@mycelium/client";
import { common, coordinator, nodeagent, replicator, router } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";

/**
 * The admin calls an operator's tools make, in one place: the `mycelium` commands (nodes, shards,
 * txn, conflicts) and the dashboard ask the cluster through these, with the same requests, so the two
 * always show the same data. Every call is idempotent except forceResolve and resolveConflict, and
 * every call has a deadline.
 */
export class ClusterAdmin {
  constructor(
    readonly client: MyceliumClient,
    /** host:port of a replicator; empty when unknown (replication views are then unavailable). */
    readonly replicatorAddress: string,
    private readonly deadlineMs = 5000,
  ) {}

  async nodes(deadlineMs = this.deadlineMs): Promise<common.NodeInfo[]> {
    return (await this.client.router.listNodes(router.ListNodesRequest.create({}), { idempotent: true, deadlineMs })).nodes;
  }

  async shards(table = "", deadlineMs = this.deadlineMs): Promise<common.ShardInfo[]> {
    return (await this.client.router.listShards(router.ListShardsRequest.create({ table }), { idempotent: true, deadlineMs })).shards;
  }

  async policies(deadlineMs = this.deadlineMs): Promise<common.TablePolicy[]> {
    return (await this.client.router.listPolicies(router.ListPoliciesRequest.create({}), { idempotent: true, deadlineMs })).policies;
  }

  /** Replication positions and lag of every shard the replicator drives. */
  async replication(deadlineMs = this.deadlineMs): Promise<replicator.ShardReplication[]> {
    return (await this.replicatorService().listReplication(replicator.ListReplicationRequest.create({}), { idempotent: true, deadlineMs })).shards;
  }

  /** Journaled conflicts: pending ones, or every one (UNSPECIFIED). */
  async conflicts(status: replicator.ConflictStatus, deadlineMs = this.deadlineMs): Promise<replicator.Conflict[]> {
    return (await this.replicatorService().listConflicts(replicator.ListConflictsRequest.create({ status }), { idempotent: true, deadlineMs })).conflicts;
  }

  async conflict(conflictId: string): Promise<replicator.Conflict> {
    const { conflict } = await this.replicatorService().getConflict(replicator.GetConflictRequest.create({ conflictId }), { idempotent: true, deadlineMs: this.deadlineMs });
    if (!conflict) throw new MyceliumError("NOT_FOUND", `no conflict ${conflictId}`);
    return conflict;
  }

  async resolveConflict(conflictId: string, resolution: replicator.ConflictStatus): Promise<replicator.Conflict> {
    const { conflict } = await this.replicatorService().resolveConflict(replicator.ResolveConflictRequest.create({ conflictId, resolution }), { deadlineMs: this.deadlineMs });
    return conflict!;
  }

  /** Decided transactions not yet acknowledged by every participant, with their participants. */
  async inDoubt(deadlineMs = this.deadlineMs): Promise<coordinator.TransactionInfo[]> {
    return (await this.client.transactionAdmin.listInDoubt(coordinator.ListInDoubtRequest.create({}), { idempotent: true, deadlineMs })).transactions;
  }

  async transaction(txId: string): Promise<coordinator.TransactionInfo> {
    const { transaction } = await this.client.transactionAdmin.getTransaction(coordinator.GetTransactionRequest.create({ txId }), { idempotent: true, deadlineMs: this.deadlineMs });
    if (!transaction) throw new MyceliumError("NOT_FOUND", `no transaction ${txId}`);
    return transaction;
  }

  /**
   * Decide a transaction (or deliver its recorded decision again). `participants` are "shard=node"
   * entries, needed when the coordinator has no record of the transaction.
   */
  async forceResolve(txId: string, decision: "commit" | "abort", participants: readonly string[] = []): Promise<coordinator.TransactionInfo> {
    const wanted = decision === "commit" ? coordinator.Decision.DECISION_COMMIT : coordinator.Decision.DECISION_ABORT;
    // Not idempotent on the wire (it may record a decision); the coordinator refuses a conflicting one.
    const response = await this.client.transactionAdmin.forceResolve(coordinator.ForceResolveRequest.create({ txId, decision: wanted, shardIds: [...participants] }), { deadlineMs: Math.max(this.deadlineMs, 15_000) });
    return response.transaction!;
  }

  /** A node's own view: its copies, stored bytes, open and prepared transactions. */
  async nodeStatus(address: string, deadlineMs = this.deadlineMs): Promise<nodeagent.GetStatusResponse> {
    return this.nodeService(address).getStatus(nodeagent.GetStatusRequest.create({}), { idempotent: true, deadlineMs });
  }

  /** Transactions a node holds prepared (the participant side of in-doubt). */
  async nodePrepared(address: string, deadlineMs = this.deadlineMs): Promise<nodeagent.PreparedTransaction[]> {
    return (await this.nodeService(address).listPrepared(nodeagent.ListPreparedRequest.create({}), { idempotent: true, deadlineMs })).transactions;
  }

  /** A copy's position and checksum; with checksumAtLsn, also the checksum it had at that position. */
  async replicaState(address: string, shardId: string, checksumAtLsn = 0, deadlineMs = this.deadlineMs): Promise<nodeagent.GetReplicaStateResponse> {
    return this.nodeService(address).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId, checksumAtLsn }), { idempotent: true, deadlineMs });
  }

  private replicatorService() {
    if (!this.replicatorAddress) throw new MyceliumError("FAILED_PRECONDITION", "no replicator address: pass --replicator or --data-dir");
    return this.client.pool.service(replicator.ReplicatorServiceService, this.replicatorAddress);
  }

  private nodeService(address: string) {
    return this.client.pool.service(nodeagent.NodeAgentServiceService, address);
  }
}

/** A shard's key range as text: `hash [a, b)` or `[start, end)` of the shard key. */
export function describeKeyRange(range: common.KeyRange | undefined): string {
  if (!range) return "";
  if (range.rangeStart || range.rangeEnd || range.rangeStartUnbounded || range.rangeEndUnbounded) {
    const show = (v: common.Value | undefined, unbounded: boolean, side: string) => (unbounded || !v?.kind ? side : String(v.kind.value));
    return `[${show(range.rangeStart, range.rangeStartUnbounded, "-inf")}, ${show(range.rangeEnd, range.rangeEndUnbounded, "+inf")})`;
  }
  return `hash [${range.hashStart}, ${range.hashEnd})`;
}

export function nodeStatusName(status: common.NodeStatus): "up" | "suspect" | "down" | "drained" | "unknown" {
  switch (status) {
    case common.NodeStatus.NODE_STATUS_UP:
      return "up";
    case common.NodeStatus.NODE_STATUS_SUSPECT:
      return "suspect";
    case common.NodeStatus.NODE_STATUS_DOWN:
      return "down";
    case common.NodeStatus.NODE_STATUS_DRAINED:
      return "drained";
    default:
      return "unknown";
  }
}

export function nodeTypeName(type: common.NodeType): "validator" | "miner" | "unknown" {
  return type === common.NodeType.NODE_TYPE_VALIDATOR ? "validator" : type === common.NodeType.NODE_TYPE_MINER ? "miner" : "unknown";
}

export function shardStateName(state: common.ShardState): string {
  return common.shardStateToJSON(state).replace("SHARD_STATE_", "").toLowerCase();
}

export function decisionName(decision: coordinator.Decision): "commit" | "abort" | "none" {
  return decision === coordinator.Decision.DECISION_COMMIT ? "commit" : decision === coordinator.Decision.DECISION_ABORT ? "abort" : "none";
}

export const conflictStatusNames: Record<number, string> = {
  [replicator.ConflictStatus.CONFLICT_STATUS_PENDING]: "pending",
  [replicator.ConflictStatus.CONFLICT_STATUS_APPLIED]: "applied",
  [replicator.ConflictStatus.CONFLICT_STATUS_DISCARDED]: "discarded",
};
