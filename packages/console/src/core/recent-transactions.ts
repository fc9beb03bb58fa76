import type { RecentTransaction } from "./snapshot";

/** What the coordinator's event stream (TransactionService.Subscribe) says, as plain records. */
export type TransactionEvent =
  | { type: "state_changed"; txId: string; newState: string; atMs: number }
  | { type: "completed"; txId: string; success: boolean; durationMs: number; atMs: number };

/**
 * The last transactions the event stream reported, newest first, at most `capacity` of them (and at
 * most `capacity` still open, so a flood of transactions that never finish cannot grow it).
 */
export class RecentTransactions {
  private readonly byId = new Map<string, RecentTransaction>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  apply(event: TransactionEvent): void {
    const existing = this.byId.get(event.txId);
    const entry: RecentTransaction = existing ?? { txId: event.txId, state: "active", outcome: "open", startedAtMs: event.atMs, durationMs: null };
    if (event.type === "state_changed") {
      entry.state = event.newState;
      if (event.newState === "committed") entry.outcome = "committed";
      if (event.newState === "aborted") entry.outcome = "aborted";
    } else {
      entry.outcome = event.success ? "committed" : "aborted";
      entry.state = entry.outcome;
      entry.durationMs = event.durationMs;
      entry.startedAtMs = event.atMs - event.durationMs;
    }
    // Re-inserted so the map's order is the order of the latest news.
    this.byId.delete(event.txId);
    this.byId.set(event.txId, entry);
    while (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value as string);
  }

  /** Newest first. */
  list(limit = this.capacity): RecentTransaction[] {
    return [...this.byId.values()].reverse().slice(0, limit).map((entry) => ({ ...entry }));
  }
}
