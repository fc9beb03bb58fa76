/**
 * The control store: the cluster's metadata behind one narrow interface (DESIGN.md §2). A versioned key-value
 * map with multi-key compare-and-set transactions (the Vitess topo model), plus two dedicated tables where a
 * key-value map would be the wrong shape — leases (time-based) and the coordinator's 2PC decision log (high
 * write rate, group commit). Typed repositories (repositories/) sit on top. Backends: SQLite and PostgreSQL;
 * both pass one behaviour suite (test/control-store.test.ts).
 */
export type KvValue = Uint8Array | string;

export interface KvEntry {
  key: string;
  /** Strings come back as strings, bytes as Uint8Array. */
  value: KvValue;
  /** The store revision at which this key was last written; never reused, also across delete and re-create. */
  version: number;
}

export type CommitOp =
  /** expectedVersion: absent = unconditional; 0 = the key must not exist; n = its version must be n. */
  | { kind: "put"; key: string; value: KvValue; expectedVersion?: number }
  | { kind: "delete"; key: string; expectedVersion?: number }
  | { kind: "check"; key: string; expectedVersion: number };

export type CommitResult =
  | { ok: true; revision: number; versions: Record<string, number> }
  /** The first condition that failed; nothing was written. actualVersion 0 = the key does not exist. */
  | { ok: false; conflictKey: string; actualVersion: number };

export interface Lease {
  /** Whether the caller holds the lease now. */
  acquired: boolean;
  /** Who holds it (the caller when acquired). */
  holder: string;
  expiresAtMs: number;
  /**
   * Increases every time the lease passes to a different holder: a fencing token to attach to the writes
   * made under the lease.
   */
  token: number;
}

export type Decision = "commit" | "abort";

export interface DecisionParticipant {
  shardId: string;
  nodeId: string;
  epoch: number;
}

export interface DecisionInput {
  txId: string;
  decision: Decision;
  participants: DecisionParticipant[];
  coordinatorId: string;
  atMs: number;
}

export type RecordDecisionResult =
  | { txId: string; ok: true }
  /** A different decision was already recorded for this transaction; it stands. */
  | { txId: string; ok: false; existing: Decision };

export interface DecisionRecord {
  txId: string;
  decision: Decision;
  coordinatorId: string;
  decidedAtMs: number;
  /** When the last participant acknowledged; null while any is outstanding. */
  completedAtMs: number | null;
  participants: Array<DecisionParticipant & { done: boolean }>;
}

/** The coordinator's durable 2PC decisions. A decision, once written, never changes. */
export interface DecisionLog {
  /**
   * Writes a batch of decisions in one store transaction (one fsync): the batch becomes durable as a whole or
   * not at all. Re-recording the same decision is a no-op; a different decision for a recorded transaction is
   * refused for that entry (`ok: false`), the rest of the batch is written.
   */
  recordDecisions(batch: readonly DecisionInput[]): Promise<RecordDecisionResult[]>;
  getDecision(txId: string): Promise<DecisionRecord | null>;
  /** Marks participants as having applied the decision; a decision with none left is complete. */
  markParticipantsDone(done: ReadonlyArray<{ txId: string; shardId: string }>, atMs?: number): Promise<void>;
  markParticipantDone(txId: string, shardId: string, atMs?: number): Promise<void>;
  /** Decisions with a participant still to acknowledge, oldest first. @param limit @default 1000 */
  listUndone(limit?: number): Promise<DecisionRecord[]>;
  /** Deletes complete decisions completed before `completedBeforeMs`; returns how many. @param limit @default 10000 */
  pruneCompleted(completedBeforeMs: number, limit?: number): Promise<number>;
}

export interface ControlStore {
  readonly kind: "sqlite" | "postgres";
  get(key: string): Promise<KvEntry | null>;
  /** Every key starting with `prefix`, in key order (byte order of UTF-8). @param limit @default 100000 */
  list(prefix: string, limit?: number): Promise<KvEntry[]>;
  /** Atomic multi-key transaction: every condition holds and everything is written, or nothing is. */
  commit(ops: readonly CommitOp[]): Promise<CommitResult>;
  /** Increases with every key-value write (not with leases or decisions): cheap "has anything changed". */
  revision(): Promise<number>;

  /**
   * Takes the lease if it is free or expired, renews it if `holder` already holds it. Expiry uses the store's
   * clock where the backend has one (PostgreSQL now()), else the caller's.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease>;
  /** Gives the lease up if `holder` holds it; otherwise does nothing. */
  releaseLease(name: string, holder: string): Promise<void>;
  getLease(name: string): Promise<Omit<Lease, "acquired"> | null>;
  /** The clock leases use, in ms since the epoch. */
  nowMs(): Promise<number>;

  readonly decisions: DecisionLog;

  close(): Promise<void>;
}
