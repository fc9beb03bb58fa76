import { randomUUID } from "node:crypto";
import { jsonCodec, Repository, type ControlStore } from "@mycelium/topology";

export type ConflictStatus = "pending" | "applied" | "discarded";

export interface ConflictRecord {
  conflictId: string;
  shardId: string;
  originNodeId: string;
  /** The change-log entry, encoded by @mycelium/db. */
  entry: string;
  txId: string | null;
  reasons: string[];
  status: ConflictStatus;
  detectedAtMs: number;
  resolvedAtMs?: number;
  resolvedBy?: string;
}

/**
 * The conflict journal in the control store (`conflicts/<id>`): divergent transactions of a returning
 * primary that clashed with what the current primary did meanwhile. Nothing is dropped silently: every
 * one stays here until an operator applies or discards it.
 */
export class ConflictJournal {
  private readonly records: Repository<ConflictRecord>;

  constructor(store: ControlStore) {
    this.records = new Repository(store, "conflicts/", jsonCodec<ConflictRecord>());
  }

  async add(record: Omit<ConflictRecord, "conflictId" | "status" | "detectedAtMs">): Promise<ConflictRecord> {
    const full: ConflictRecord = { ...record, conflictId: randomUUID(), status: "pending", detectedAtMs: Date.now() };
    const written = await this.records.put(full.conflictId, full, 0);
    if (!written.ok) throw new Error(`conflict ${full.conflictId} already recorded`);
    return full;
  }

  async list(status?: ConflictStatus): Promise<ConflictRecord[]> {
    const all = (await this.records.list()).map((found) => found.value);
    return (status ? all.filter((r) => r.status === status) : all).sort((a, b) => a.detectedAtMs - b.detectedAtMs);
  }

  async get(conflictId: string): Promise<ConflictRecord | null> {
    return (await this.records.get(conflictId))?.value ?? null;
  }

  /** Marks a pending conflict resolved; false when it was resolved meanwhile. */
  async resolve(conflictId: string, status: "applied" | "discarded", by: string): Promise<ConflictRecord | null> {
    const found = await this.records.get(conflictId);
    if (!found || found.value.status !== "pending") return null;
    const next: ConflictRecord = { ...found.value, status, resolvedAtMs: Date.now(), resolvedBy: by };
    const written = await this.records.put(conflictId, next, found.version);
    return written.ok ? next : null;
  }
}
