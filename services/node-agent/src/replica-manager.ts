import { randomUUID } from "node:crypto";
import { decodeChangeEntry, decodeSnapshotChunk, encodeChangeEntry, encodeSnapshotChunk, type ShardStore, type SnapshotChunk } from "@mycelium/db";
import { fromValue, nodeagent } from "@mycelium/proto";
import { MyceliumError, sleep } from "@mycelium/rpc";
import type { Logger, Telemetry } from "@mycelium/telemetry";
import { toMyceliumError } from "./core/db-errors";
import type { ShardAssignments } from "./core/shard-assignments";

export interface ReplicaManagerOptions {
  nodeId: string;
  store: ShardStore;
  assignments: ShardAssignments;
  telemetry: Telemetry;
  /** A write arriving without a valid lease waits this long for the replicator's renewal. */
  leaseWaitMs: number;
  /** A commit in synchronous mode waits this long for its secondaries (MYCELIUM_COMMIT_TIMEOUT). */
  replicationWaitMs: number;
  /** Told when a shard's schema changed through the change log (its reported version must follow). */
  onSchemaChanged?: (shardId: string) => void;
}

interface Lease {
  epoch: number;
  /** On this process's monotonic clock (performance.now()). */
  expiresAt: number;
  syncReplicas: number;
}

interface RestoreSession {
  shardId: string;
  chunks: SnapshotChunk[];
  nextSequence: number;
  bytes: number;
  touchedAt: number;
}

/** Most snapshot bytes buffered per restore; a bigger shard is refused rather than exhausting memory. */
const maxRestoreBytes = 512 * 1024 * 1024;
const maxRestoreSessions = 4;
const restoreSessionIdleMs = 60_000;

/**
 * A node's side of replication: it writes only under a lease the replicator keeps renewing, serves its
 * change log to the replicator, applies primaries' logs as a secondary, and changes role when the
 * replicator promotes or demotes it. Safety rests on two fences: the lease (a primary cut off from the
 * replicator stops writing before anyone else is promoted) and the epoch (a demoted copy refuses writes
 * routed under the old epoch, checked by the store itself).
 */
export class ReplicaManager {
  private readonly leases = new Map<string, Lease>();
  /** shard → node → lsn the replicator has seen applied there. */
  private readonly acknowledged = new Map<string, Map<string, number>>();
  private readonly ackWaiters = new Map<string, Set<() => void>>();
  private readonly leaseWaiters = new Map<string, Set<() => void>>();
  private readonly restores = new Map<string, RestoreSession>();
  private readonly log: Logger;
  private readonly metrics;

  constructor(private readonly options: ReplicaManagerOptions) {
    this.log = options.telemetry.logger.child({ component: "replication" });
    const m = options.telemetry.metrics;
    this.metrics = {
      shipped: m.counter({ name: "mycelium_replication_entries_served_total", help: "Change-log entries sent to the replicator." }),
      applied: m.counter({ name: "mycelium_replication_entries_applied_total", help: "Change-log entries applied as a secondary." }),
      bytes: m.counter({ name: "mycelium_replication_bytes_total", help: "Encoded change-log bytes sent and received.", labelNames: ["direction"] as const }),
      leaseRefusals: m.counter({ name: "mycelium_replication_lease_refusals_total", help: "Writes refused because this primary held no valid lease." }),
      syncWaits: m.counter({ name: "mycelium_replication_sync_waits_total", help: "Synchronous commits by outcome.", labelNames: ["outcome"] as const }),
      roleChanges: m.counter({ name: "mycelium_replication_role_changes_total", help: "Promotions and demotions of this node's copies.", labelNames: ["change"] as const }),
    };
  }

  // ---- leases -----------------------------------------------------------------------------------

  renewLease(request: nodeagent.RenewLeaseRequest): void {
    const assignment = this.options.assignments.get(request.shardId);
    if (assignment && assignment.epoch > request.epoch) {
      throw new MyceliumError("FAILED_PRECONDITION", `shard ${request.shardId} is at epoch ${assignment.epoch}; a lease for epoch ${request.epoch} is stale`, { reason: "STALE_EPOCH" });
    }
    this.leases.set(request.shardId, { epoch: request.epoch, expiresAt: performance.now() + request.durationMs, syncReplicas: request.syncReplicas });
    for (const wake of this.leaseWaiters.get(request.shardId) ?? []) wake();
  }

  /** Milliseconds of lease left on a shard (0: none). */
  leaseRemainingMs(shardId: string): number {
    const lease = this.leases.get(shardId);
    return lease ? Math.max(0, lease.expiresAt - performance.now()) : 0;
  }

  /**
   * A write may go ahead only under a valid lease at the shard's current epoch. Without one it waits
   * briefly for the replicator (a new table's first lease, a renewal in flight), then refuses.
   */
  async requireWriteLease(shardId: string, epoch: number): Promise<void> {
    const deadline = performance.now() + this.options.leaseWaitMs;
    for (;;) {
      const lease = this.leases.get(shardId);
      if (lease && lease.epoch >= epoch && lease.expiresAt > performance.now()) return;
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        this.metrics.leaseRefusals.inc();
        throw new MyceliumError(
          "UNAVAILABLE",
          `node ${this.options.nodeId} holds no write lease on shard ${shardId}${lease ? ` (it lapsed ${Math.round(performance.now() - lease.expiresAt)} ms ago)` : ""}; the replicator may be promoting another copy — retry shortly`,
          { reason: "NO_LEASE", details: { shardId } },
        );
      }
      await new Promise<void>((resolve) => {
        const waiters = this.leaseWaiters.get(shardId) ?? new Set();
        const wake = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(remaining, 250));
        waiters.add(wake);
        this.leaseWaiters.set(shardId, waiters);
      });
    }
  }

  // ---- synchronous replication -----------------------------------------------------------------

  acknowledge(request: nodeagent.AckReplicationRequest): void {
    const positions = this.acknowledged.get(request.shardId) ?? new Map<string, number>();
    for (const [node, lsn] of Object.entries(request.applied)) positions.set(node, Math.max(positions.get(node) ?? 0, lsn));
    this.acknowledged.set(request.shardId, positions);
    for (const wake of this.ackWaiters.get(request.shardId) ?? []) wake();
  }

  /**
   * In synchronous mode, the commit just made (at or below the shard's head now) is acknowledged only
   * when enough secondaries hold it. It is committed on this primary either way; the error says so.
   */
  async awaitReplication(shardId: string): Promise<void> {
    const lease = this.leases.get(shardId);
    const needed = lease?.syncReplicas ?? 0;
    if (needed <= 0) return;
    const target = await this.options.store.headLsn(shardId);
    const deadline = performance.now() + this.options.replicationWaitMs;
    const reached = () => [...(this.acknowledged.get(shardId)?.entries() ?? [])].filter(([node, lsn]) => node !== this.options.nodeId && lsn >= target).length;
    while (reached() < needed) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        this.metrics.syncWaits.inc({ outcome: "timeout" });
        throw new MyceliumError(
          "UNAVAILABLE",
          `committed on the primary of shard ${shardId} but only ${reached()} of ${needed} secondaries confirmed it within ${this.options.replicationWaitMs} ms (MYCELIUM_COMMIT_TIMEOUT); it may be lost if the primary fails now`,
          { reason: "NOT_REPLICATED", details: { shardId, lsn: String(target) } },
        );
      }
      await new Promise<void>((resolve) => {
        const waiters = this.ackWaiters.get(shardId) ?? new Set();
        const wake = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(remaining, 500));
        waiters.add(wake);
        this.ackWaiters.set(shardId, waiters);
      });
    }
    this.metrics.syncWaits.inc({ outcome: "replicated" });
  }

  // ---- the log ----------------------------------------------------------------------------------

  /** The change log after a position, then new entries as they commit; keepalives while idle. */
  async *streamChanges(request: nodeagent.StreamChangesRequest, signal: AbortSignal): AsyncIterable<nodeagent.StreamChangesResponse> {
    const { store } = this.options;
    const batch = Math.min(Math.max(request.maxEntries || 256, 1), 4096);
    const keepaliveMs = Math.min(Math.max(request.keepaliveMs || 1000, 50), 30_000);
    let after = request.afterLsn;
    try {
      while (!signal.aborted) {
        const entries = await store.readChanges(request.shardId, after, batch);
        const head = entries.length > 0 ? Math.max(entries[entries.length - 1]!.lsn, await store.headLsn(request.shardId)) : await store.headLsn(request.shardId);
        const encoded = entries.map(encodeChangeEntry);
        if (entries.length > 0) {
          after = entries[entries.length - 1]!.lsn;
          this.metrics.shipped.inc(entries.length);
          this.metrics.bytes.inc({ direction: "out" }, encoded.reduce((sum, e) => sum + e.length, 0));
        }
        yield nodeagent.StreamChangesResponse.create({ entries: encoded, headLsn: head, epoch: this.options.assignments.get(request.shardId)?.epoch ?? 0 });
        if (entries.length < batch) await store.waitForChanges(request.shardId, after, keepaliveMs, signal);
      }
    } catch (error) {
      if (signal.aborted) return;
      throw toMyceliumError(error, { shardId: request.shardId });
    }
  }

  async applyChanges(request: nodeagent.ApplyChangesRequest): Promise<nodeagent.ApplyChangesResponse> {
    const shardId = request.shard?.shardId ?? "";
    const assignment = this.options.assignments.get(shardId);
    if (assignment && assignment.primaryNodeId === this.options.nodeId && (request.shard?.epoch ?? 0) <= assignment.epoch) {
      throw new MyceliumError("FAILED_PRECONDITION", `node ${this.options.nodeId} is the primary of shard ${shardId} at epoch ${assignment.epoch}; it does not apply others' changes`, { reason: "STALE_EPOCH" });
    }
    try {
      await this.options.store.ensureShard(shardId);
      const entries = request.entries.map(decodeChangeEntry);
      const schemaChanges = entries.some((entry) => entry.ddl?.length);
      if (schemaChanges) this.options.onSchemaChanged?.(shardId);
      this.metrics.bytes.inc({ direction: "in" }, request.entries.reduce((sum, e) => sum + e.length, 0));
      const { appliedLsn } = await this.options.store.applyChanges(shardId, entries);
      // Again once applied: a heartbeat that read the schema state meanwhile cached the old version.
      if (schemaChanges) this.options.onSchemaChanged?.(shardId);
      this.metrics.applied.inc(entries.length);
      const state = await this.options.store.replicaState(shardId);
      return nodeagent.ApplyChangesResponse.create({ appliedLsn, checksum: state.checksum });
    } catch (error) {
      throw toMyceliumError(error, { shardId });
    }
  }

  async replicaState(request: nodeagent.GetReplicaStateRequest): Promise<nodeagent.GetReplicaStateResponse> {
    try {
      await this.options.store.ensureShard(request.shardId);
      const state = await this.options.store.replicaState(request.shardId);
      const at = request.checksumAtLsn > 0 ? await this.options.store.checksumAt(request.shardId, request.checksumAtLsn) : null;
      const lease = this.leases.get(request.shardId);
      return nodeagent.GetReplicaStateResponse.create({
        appliedLsn: state.appliedLsn,
        epoch: state.epoch,
        versionVector: state.versionVector,
        checksum: state.checksum,
        checksumAtLsn: at ?? "",
        isPrimary: this.options.assignments.get(request.shardId)?.primaryNodeId === this.options.nodeId,
        leaseExpiresAtMs: lease && lease.expiresAt > performance.now() ? Math.round(Date.now() + (lease.expiresAt - performance.now())) : 0,
      });
    } catch (error) {
      throw toMyceliumError(error, { shardId: request.shardId });
    }
  }

  async verifyChecksum(shardId: string): Promise<nodeagent.VerifyChecksumResponse> {
    try {
      const result = await this.options.store.verifyChecksum(shardId);
      return nodeagent.VerifyChecksumResponse.create({ incremental: result.incremental, scanned: result.scanned, ok: result.ok });
    } catch (error) {
      throw toMyceliumError(error, { shardId });
    }
  }

  async *snapshot(shardId: string): AsyncIterable<nodeagent.SnapshotResponse> {
    let lsn = 0;
    for await (const chunk of this.options.store.snapshot(shardId)) {
      if (chunk.kind === "begin") lsn = chunk.lsn;
      yield nodeagent.SnapshotResponse.create({ chunk: encodeSnapshotChunk(chunk), lsn });
    }
  }

  /** Chunks of a restore arrive one call each; the last one replaces the copy atomically. */
  async restoreSnapshot(request: nodeagent.RestoreSnapshotRequest): Promise<nodeagent.RestoreSnapshotResponse> {
    const shardId = request.shard?.shardId ?? "";
    this.expireRestores();
    let session = this.restores.get(request.sessionId);
    if (!session) {
      if (request.sequence !== 0) throw new MyceliumError("FAILED_PRECONDITION", `restore session ${request.sessionId} is unknown (expired?); start again from chunk 0`, { reason: "RESTORE_SESSION" });
      if (this.restores.size >= maxRestoreSessions) throw new MyceliumError("RESOURCE_EXHAUSTED", `${this.restores.size} restores already in progress on node ${this.options.nodeId}`);
      session = { shardId, chunks: [], nextSequence: 0, bytes: 0, touchedAt: Date.now() };
      this.restores.set(request.sessionId, session);
    }
    if (request.sequence !== session.nextSequence || session.shardId !== shardId) {
      this.restores.delete(request.sessionId);
      throw new MyceliumError("FAILED_PRECONDITION", `restore session ${request.sessionId}: expected chunk ${session.nextSequence} of ${session.shardId}, got ${request.sequence} of ${shardId}`, { reason: "RESTORE_SESSION" });
    }
    session.bytes += request.chunk.length;
    if (session.bytes > maxRestoreBytes) {
      this.restores.delete(request.sessionId);
      throw new MyceliumError("RESOURCE_EXHAUSTED", `snapshot of shard ${shardId} exceeds ${maxRestoreBytes} bytes buffered for a restore`);
    }
    session.chunks.push(decodeSnapshotChunk(request.chunk));
    session.nextSequence++;
    session.touchedAt = Date.now();
    if (!request.last) return nodeagent.RestoreSnapshotResponse.create({});
    this.restores.delete(request.sessionId);
    try {
      const { lsn } = await this.options.store.restoreSnapshot(shardId, session.chunks);
      this.options.onSchemaChanged?.(shardId);
      if (request.shard?.epoch) await this.options.store.setShardEpoch(shardId, request.shard.epoch);
      this.log.info({ shardId, lsn }, "copy restored from a snapshot");
      return nodeagent.RestoreSnapshotResponse.create({ lsn });
    } catch (error) {
      throw toMyceliumError(error, { shardId });
    }
  }

  async truncate(request: nodeagent.TruncateChangesRequest): Promise<void> {
    try {
      await this.options.store.truncateChanges(request.shardId, request.throughLsn);
    } catch (error) {
      throw toMyceliumError(error, { shardId: request.shardId });
    }
  }

  // ---- roles ------------------------------------------------------------------------------------

  /**
   * Become the shard's primary at a new epoch: fence the old epoch in the store, then re-run the
   * prepared transactions the old primary left (their redo was adopted here) so they can be finished.
   * Writes start when the replicator grants the lease.
   */
  async promote(request: nodeagent.PromoteRequest): Promise<nodeagent.PromoteResponse> {
    const ref = request.shard!;
    try {
      await this.options.store.ensureShard(ref.shardId);
      await this.options.store.setShardEpoch(ref.shardId, ref.epoch);
      this.options.assignments.learn({ shardId: ref.shardId, table: request.table, epoch: ref.epoch, primaryNodeId: this.options.nodeId });
      let activated = 0;
      // SQLite holds one prepared transaction per shard at a time: activate the rest as each resolves.
      for (let round = 0; round < 100; round++) {
        const result = await this.options.store.activatePrepared(ref.shardId);
        activated += result.activated.length;
        if (result.waiting.length === 0) break;
        await sleep(200);
      }
      const state = await this.options.store.replicaState(ref.shardId);
      this.metrics.roleChanges.inc({ change: "promoted" });
      this.log.warn({ shardId: ref.shardId, epoch: ref.epoch, appliedLsn: state.appliedLsn, activated }, "promoted to primary");
      return nodeagent.PromoteResponse.create({ appliedLsn: state.appliedLsn, adoptedTransactions: activated });
    } catch (error) {
      throw toMyceliumError(error, { shardId: ref.shardId });
    }
  }

  /** Another copy is primary from this epoch on: drop the lease, fence the store, report the position. */
  async demote(request: nodeagent.DemoteRequest, abortOpen: (shardId: string) => Promise<void>): Promise<nodeagent.DemoteResponse> {
    const ref = request.shard!;
    this.leases.delete(ref.shardId);
    try {
      await this.options.store.ensureShard(ref.shardId);
      await this.options.store.setShardEpoch(ref.shardId, ref.epoch);
      const previous = this.options.assignments.get(ref.shardId);
      this.options.assignments.learn({ shardId: ref.shardId, table: previous?.table ?? "", epoch: ref.epoch, primaryNodeId: request.primaryNodeId });
      await abortOpen(ref.shardId);
      const state = await this.options.store.replicaState(ref.shardId);
      if (previous?.primaryNodeId === this.options.nodeId) {
        this.metrics.roleChanges.inc({ change: "demoted" });
        this.log.warn({ shardId: ref.shardId, epoch: ref.epoch, primary: request.primaryNodeId }, "demoted to secondary");
      }
      return nodeagent.DemoteResponse.create({ appliedLsn: state.appliedLsn, versionVector: state.versionVector });
    } catch (error) {
      throw toMyceliumError(error, { shardId: ref.shardId });
    }
  }

  async adopt(request: nodeagent.AdoptPreparedRequest): Promise<void> {
    const shardId = request.shard?.shardId ?? "";
    try {
      await this.options.store.ensureShard(shardId);
      await this.options.store.adoptPrepared(
        shardId,
        request.txId,
        request.statements.map((s) => ({ sql: s.sql, params: s.params.map(fromValue) })),
        request.minAppliedLsn > 0 ? { minAppliedLsn: request.minAppliedLsn } : {},
      );
    } catch (error) {
      throw toMyceliumError(error, { shardId });
    }
  }

  /** An aborted transaction's adopted redo is forgotten. */
  async discardAdopted(shardId: string, txId: string): Promise<void> {
    await this.options.store.discardAdopted(shardId, txId);
  }

  newSessionId(): string {
    return randomUUID();
  }

  private expireRestores(): void {
    const now = Date.now();
    for (const [id, session] of this.restores) if (now - session.touchedAt > restoreSessionIdleMs) this.restores.delete(id);
  }
}
