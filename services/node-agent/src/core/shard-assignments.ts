import { common } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";

export interface Assignment {
  shardId: string;
  table: string;
  epoch: number;
  primaryNodeId: string;
}

export type EpochCheck =
  | { ok: true; assignment: Assignment }
  /** The caller used an epoch older than the node's: the shard moved or changed primary since. */
  | { ok: false; kind: "stale"; known: number }
  /** The caller is ahead of the node (or the node does not know the shard yet): refresh, then check again. */
  | { ok: false; kind: "behind" };

/** The shards this node holds, by the router's last word (heartbeat answers). Pure bookkeeping. */
export class ShardAssignments {
  private readonly byShard = new Map<string, Assignment>();
  private version = 0;

  /** Replace the assignments with the router's list if it is newer than what we have. */
  update(shards: readonly common.ShardInfo[], shardMapVersion: number): { added: Assignment[]; removed: Assignment[] } {
    if (shardMapVersion < this.version) return { added: [], removed: [] };
    this.version = shardMapVersion;
    const next = new Map(shards.map((s) => [s.shardId, { shardId: s.shardId, table: s.table, epoch: s.epoch, primaryNodeId: s.primaryNodeId }]));
    const added = [...next.values()].filter((a) => !this.byShard.has(a.shardId));
    const removed = [...this.byShard.values()].filter((a) => !next.has(a.shardId));
    this.byShard.clear();
    for (const [id, assignment] of next) this.byShard.set(id, assignment);
    return { added, removed };
  }

  /** Learn of a shard from a trusted caller (the coordinator applying DDL) before the next heartbeat. */
  learn(assignment: Assignment): void {
    const existing = this.byShard.get(assignment.shardId);
    if (!existing || existing.epoch < assignment.epoch) this.byShard.set(assignment.shardId, assignment);
  }

  get(shardId: string): Assignment | undefined {
    return this.byShard.get(shardId);
  }

  get all(): Assignment[] {
    return [...this.byShard.values()];
  }

  check(shardId: string, epoch: number): EpochCheck {
    const assignment = this.byShard.get(shardId);
    if (!assignment || assignment.epoch < epoch) return { ok: false, kind: "behind" };
    if (assignment.epoch > epoch) return { ok: false, kind: "stale", known: assignment.epoch };
    return { ok: true, assignment };
  }
}

export function staleEpochError(shardId: string, epoch: number, known: number): MyceliumError {
  return new MyceliumError("FAILED_PRECONDITION", `shard ${shardId} is at epoch ${known}, the statement was routed at epoch ${epoch}; route it again`, {
    reason: "STALE_EPOCH",
    details: { shardId, epoch: String(epoch), known: String(known) },
  });
}

export function notHostedError(shardId: string, nodeId: string): MyceliumError {
  return new MyceliumError("FAILED_PRECONDITION", `node ${nodeId} does not hold shard ${shardId}; route it again`, {
    reason: "STALE_EPOCH",
    details: { shardId },
  });
}
