/**
 * The coordinator's view of one distributed transaction, as a pure state machine (no I/O), so every
 * path through it can be tested exhaustively.
 *
 *   active ──► preparing ──► prepared ──► committing ──► committed
 *     │            │             │
 *     │            └─────────────┴──► aborting ──► aborted
 *     ├──► committing (one phase: a single written shard) ──► committed | aborted
 *     └──► aborting ──► aborted
 */
export type TransactionState = "active" | "preparing" | "prepared" | "committing" | "committed" | "aborting" | "aborted";

const transitions: Record<TransactionState, readonly TransactionState[]> = {
  active: ["preparing", "committing", "aborting"],
  preparing: ["prepared", "aborting"],
  prepared: ["committing", "aborting"],
  // committing → aborted only for a one-phase commit that the single participant refused.
  committing: ["committed", "aborted"],
  aborting: ["aborted"],
  committed: [],
  aborted: [],
};

export function canTransition(from: TransactionState, to: TransactionState): boolean {
  return transitions[from].includes(to);
}

export function isFinal(state: TransactionState): boolean {
  return state === "committed" || state === "aborted";
}

export interface Participant {
  shardId: string;
  epoch: number;
  nodeId: string;
  address: string;
  /** A statement that changes data ran on this shard in this transaction. */
  written: boolean;
  /** The shard holds a lock for this transaction (it wrote, or read with a locking read). */
  locked: boolean;
  /** The shard's secondaries, which keep a copy of the prepared transaction's redo. */
  secondaryAddresses?: string[];
  /** Secondaries that must hold the redo before this participant's yes vote counts. */
  syncReplicas?: number;
  /** The writes sent to this shard in this transaction, in order: its redo. */
  redo?: Array<{ sql: string; params: unknown[] }>;
}

export type CommitPlan =
  /** Nothing was written: release whatever was opened; nothing to decide. */
  | { kind: "read-only"; release: Participant[] }
  /** One shard was written: commit it directly, no prepare and no decision record. */
  | { kind: "one-phase"; participant: Participant; release: Participant[] }
  /** Several shards were written: prepare them all, record the decision, then commit them. */
  | { kind: "two-phase"; voters: Participant[]; release: Participant[] };

/**
 * Only shards that were written vote. Shards that were only read are released after the outcome
 * (those that hold a read lock are told to roll back; the rest hold nothing).
 */
export function planCommit(participants: readonly Participant[]): CommitPlan {
  const voters = participants.filter((p) => p.written);
  const release = participants.filter((p) => !p.written);
  if (voters.length === 0) return { kind: "read-only", release };
  if (voters.length === 1) return { kind: "one-phase", participant: voters[0]!, release };
  return { kind: "two-phase", voters, release };
}

export class InvalidTransition extends Error {
  constructor(txId: string, from: TransactionState, to: TransactionState) {
    super(`transaction ${txId}: illegal transition ${from} → ${to}`);
    this.name = "InvalidTransition";
  }
}

/** Tracks state and participants of one transaction; every transition is checked. */
export class TransactionRecord {
  private currentState: TransactionState = "active";
  private readonly participantsByShard = new Map<string, Participant>();
  readonly startedAtMs: number;
  lastActivityAtMs: number;

  constructor(readonly txId: string, nowMs: number) {
    this.startedAtMs = nowMs;
    this.lastActivityAtMs = nowMs;
  }

  get state(): TransactionState {
    return this.currentState;
  }

  /** Move to `to`; returns the previous state. Throws on an illegal transition (a bug). */
  transition(to: TransactionState): TransactionState {
    const from = this.currentState;
    if (!canTransition(from, to)) throw new InvalidTransition(this.txId, from, to);
    this.currentState = to;
    return from;
  }

  /** Record that a statement ran on a shard; `written` is sticky. */
  touch(participant: Participant): void {
    const existing = this.participantsByShard.get(participant.shardId);
    if (existing) {
      if (existing.epoch !== participant.epoch || existing.nodeId !== participant.nodeId) {
        throw new Error(
          `shard ${participant.shardId} moved during transaction ${this.txId} (epoch ${existing.epoch} on ${existing.nodeId}, now ${participant.epoch} on ${participant.nodeId})`,
        );
      }
      existing.written ||= participant.written;
      existing.locked ||= participant.locked;
      if (participant.redo?.length) existing.redo = [...(existing.redo ?? []), ...participant.redo];
    } else {
      this.participantsByShard.set(participant.shardId, { ...participant });
    }
  }

  participant(shardId: string): Participant | undefined {
    return this.participantsByShard.get(shardId);
  }

  get participants(): Participant[] {
    return [...this.participantsByShard.values()];
  }
}
