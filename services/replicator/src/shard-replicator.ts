import { decodeChangeEntry, type ChangeEntry } from "@mycelium/db";
import { common, nodeagent, replicator, toValue } from "@mycelium/proto";
import { backoffDelayMs, isMyceliumError, sleep, type BackoffPolicy, type ClientPool, type PromiseClient } from "@mycelium/rpc";
import { BoundedLoop } from "@mycelium/runtime";
import type { Logger } from "@mycelium/telemetry";
import type { ClusterDirectory } from "./adapters/cluster-directory";
import type { ConflictJournal } from "./adapters/conflict-journal";
import { classifyDivergence, divergentEntries, type EntryRows } from "./core/divergence";
import { leaseCertainlyExpired, leaseDurationMs } from "./core/lease-timing";
import { coalesce } from "./core/coalesce";
import { choosePromotion, replicasAfterPromotion } from "./core/promotion";
import { rowChangesToStatements } from "./core/row-sql";
import type { ReplicationMetrics } from "./replication-metrics";

/** Stream messages read ahead while a batch is applied (each holds at most 256 entries). */
const maxBufferedMessages = 16;

/** On an asynchronous shard, the primary hears of its secondaries' positions at most this often. */
const asyncAckIntervalMs = 250;

export interface ShardReplicatorOptions {
  shardId: string;
  replicatorId: string;
  clients: ClientPool;
  directory: ClusterDirectory;
  journal: ConflictJournal;
  logger: Logger;
  metrics: ReplicationMetrics;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  retry: BackoffPolicy;
  /** Entries kept in a primary's log behind its slowest secondary (lagging replicas catch up from it). */
  retainEntries?: number;
  /** How often replicas' checksums are compared and re-verified from a scan. @default 60000 */
  verifyIntervalMs?: number;
}

type NodeClient = PromiseClient<typeof nodeagent.NodeAgentServiceService>;

/**
 * One shard's replication, owned by one replicator at a time (by lease): keeps the primary's write
 * lease alive, ships its change log to every secondary in order, fails over when the primary is gone,
 * reconciles a primary that comes back, and resyncs a copy whose checksum disagrees.
 */
export class ShardReplicator {
  /** Secondary node id → lsn it has applied (as last reported). */
  private readonly applied = new Map<string, number>();
  private readonly entryTimes = new Map<number, number>();
  private headLsn = 0;
  private lastAcknowledgedRenewalAt = performance.now();
  /** The last lease renewal failed: the primary is down, restarting or cut off. */
  private primarySilent = false;
  /** Aborted to end a shipping retry's backoff early (see leaseTick). */
  private retryWake: AbortController | null = null;
  /** When the primary was last told its secondaries' positions (see acknowledge). */
  private lastAcknowledgedAt = 0;
  private failovers = 0;
  private readonly controller = new AbortController();
  private streamController: AbortController | null = null;
  private leaseLoop: BoundedLoop | null = null;
  private verifyLoop: BoundedLoop | null = null;
  private shipping: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(private readonly options: ShardReplicatorOptions) {
    this.log = options.logger.child({ shardId: options.shardId });
  }

  get shardId(): string {
    return this.options.shardId;
  }

  start(): this {
    const { heartbeatIntervalMs } = this.options;
    this.leaseLoop = new BoundedLoop({ name: `lease ${this.shardId}`, intervalMs: heartbeatIntervalMs, jitter: 0.05, runImmediately: true, logger: this.log }, () => this.leaseTick()).start();
    this.verifyLoop = new BoundedLoop({ name: `verify ${this.shardId}`, intervalMs: this.options.verifyIntervalMs ?? 60_000, logger: this.log }, () => this.verifyTick()).start();
    this.shipping = this.shipLoop();
    return this;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.streamController?.abort();
    await Promise.all([this.leaseLoop?.stop(), this.verifyLoop?.stop(), this.shipping?.catch(() => undefined)]);
  }

  status(): replicator.ShardReplication {
    const shard = this.options.directory.shard(this.shardId);
    const now = Date.now();
    return replicator.ShardReplication.create({
      shardId: this.shardId,
      epoch: shard?.epoch ?? 0,
      primaryNodeId: shard?.primaryNodeId ?? "",
      headLsn: this.headLsn,
      failovers: this.failovers,
      replicas: (shard?.replicaNodeIds ?? []).map((nodeId) => {
        const primary = nodeId === shard?.primaryNodeId;
        const lsn = primary ? this.headLsn : (this.applied.get(nodeId) ?? -1);
        const oldest = lsn >= 0 && lsn < this.headLsn ? this.entryTimes.get(lsn + 1) : undefined;
        return replicator.ReplicaPosition.create({
          nodeId,
          primary,
          appliedLsn: Math.max(lsn, 0),
          lagEntries: lsn < 0 ? -1 : Math.max(0, this.headLsn - lsn),
          lagMs: oldest ? Math.max(0, now - oldest) : 0,
          state: primary ? "primary" : lsn < 0 ? "unknown" : lsn >= this.headLsn ? "caught-up" : "catching-up",
        });
      }),
    });
  }

  // ---- lease and failover --------------------------------------------------------------------

  private async leaseTick(): Promise<void> {
    const shard = this.options.directory.shard(this.shardId);
    if (!shard || !shard.primaryNodeId) return;
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.options;
    const sentAt = performance.now();
    try {
      await this.node(shard.primaryNodeId).renewLease(
        nodeagent.RenewLeaseRequest.create({
          shardId: this.shardId,
          epoch: shard.epoch,
          durationMs: leaseDurationMs(heartbeatIntervalMs, heartbeatTimeoutMs),
          syncReplicas: this.options.directory.syncReplicas(shard.table),
        }),
        { deadlineMs: heartbeatIntervalMs },
      );
      this.lastAcknowledgedRenewalAt = sentAt;
      if (this.primarySilent) {
        // The primary is back (a restart): resume shipping now rather than after the retry backoff,
        // which may have grown to REPLICATION_RETRY_MAX while it was away.
        this.primarySilent = false;
        this.retryWake?.abort();
      }
    } catch (error) {
      this.primarySilent = true;
      if (isMyceliumError(error) && error.reason === "STALE_EPOCH") {
        await this.options.directory.refresh(true);
        return;
      }
      if (leaseCertainlyExpired(this.lastAcknowledgedRenewalAt, performance.now(), heartbeatTimeoutMs)) {
        await this.failOver(shard, error);
      }
    }
  }

  /**
   * The primary has been silent longer than the heartbeat timeout, so its lease has lapsed: promote
   * the most up-to-date secondary. The epoch change is compare-and-set — exactly one replicator wins.
   */
  private async failOver(shard: common.ShardInfo, cause: unknown): Promise<void> {
    const secondaries = shard.replicaNodeIds.filter((id) => id !== shard.primaryNodeId);
    const candidates = await Promise.all(
      secondaries.map(async (nodeId) => {
        try {
          const state = await this.node(nodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: this.shardId }), { deadlineMs: this.options.heartbeatIntervalMs });
          return { nodeId, kind: this.options.directory.nodeKind(nodeId), appliedLsn: state.appliedLsn };
        } catch {
          return { nodeId, kind: this.options.directory.nodeKind(nodeId), appliedLsn: null };
        }
      }),
    );
    const chosen = choosePromotion(candidates, shard.primaryNodeId);
    if (!chosen) {
      this.log.error({ primary: shard.primaryNodeId, err: (cause as Error).message }, "primary lost and no secondary reachable: the shard cannot take writes");
      return;
    }
    const result = await this.options.directory.changeEpoch(this.shardId, shard.epoch, (current) => ({
      primaryNodeId: chosen.nodeId,
      replicaNodeIds: replicasAfterPromotion(current.replicaNodeIds, chosen.nodeId),
    }));
    if (!result.ok) {
      this.log.info("the shard changed meanwhile (another replicator acted); not failing over");
      return;
    }
    const epoch = result.shard.epoch;
    await this.options.directory.recordFork({ shardId: this.shardId, oldPrimary: shard.primaryNodeId, newPrimary: chosen.nodeId, forkLsn: chosen.appliedLsn!, epoch, atMs: Date.now() });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.node(chosen.nodeId).promote(nodeagent.PromoteRequest.create({ shard: { shardId: this.shardId, epoch }, table: shard.table }), { deadlineMs: 30_000 });
        break;
      } catch (error) {
        if (attempt >= 5 || this.controller.signal.aborted) {
          this.log.error({ err: error, node: chosen.nodeId }, "promotion not acknowledged; the lease loop will retry failing over");
          return;
        }
        await sleep(backoffDelayMs(this.options.retry, attempt));
      }
    }
    this.lastAcknowledgedRenewalAt = performance.now();
    await this.leaseTick();
    // Everyone else learns the new epoch now (the old primary when it is back).
    await Promise.allSettled(
      result.shard.replicaNodeIds
        .filter((id) => id !== chosen.nodeId)
        .map((id) => this.node(id).demote(nodeagent.DemoteRequest.create({ shard: { shardId: this.shardId, epoch }, primaryNodeId: chosen.nodeId }), { deadlineMs: this.options.heartbeatIntervalMs })),
    );
    this.failovers++;
    this.options.metrics.failovers.inc();
    this.applied.delete(chosen.nodeId);
    this.log.warn({ from: shard.primaryNodeId, to: chosen.nodeId, epoch, forkLsn: chosen.appliedLsn, cause: (cause as Error).message }, "failed over");
    this.streamController?.abort();
  }

  // ---- shipping ------------------------------------------------------------------------------

  private async shipLoop(): Promise<void> {
    let failures = 0;
    while (!this.controller.signal.aborted) {
      try {
        const shipped = await this.shipOnce();
        failures = 0;
        if (!shipped) await sleep(this.options.heartbeatIntervalMs, this.controller.signal).catch(() => undefined);
      } catch (error) {
        if (this.controller.signal.aborted) return;
        failures = Math.min(failures + 1, 16);
        this.log.debug({ err: (error as Error).message, failures }, "shipping interrupted; retrying");
        // The lease loop cuts the wait short when a silent primary answers again.
        this.retryWake = new AbortController();
        const woken = await sleep(Math.max(50, backoffDelayMs(this.options.retry, failures)), AbortSignal.any([this.controller.signal, this.retryWake.signal])).then(
          () => false,
          () => true,
        );
        this.retryWake = null;
        if (woken) failures = 0;
      }
    }
  }

  /** One stream from the primary to the secondaries, until it breaks or the primary changes. */
  private async shipOnce(): Promise<boolean> {
    const shard = this.options.directory.shard(this.shardId);
    if (!shard?.primaryNodeId) return false;
    const primary = shard.primaryNodeId;
    const secondaries = shard.replicaNodeIds.filter((id) => id !== primary);
    if (secondaries.length === 0) return false;
    const fork = await this.options.directory.fork(this.shardId);
    this.log.debug({ primary, secondaries, fork: fork ? { old: fork.oldPrimary, new: fork.newPrimary } : null, applied: Object.fromEntries(this.applied) }, "shipping round");
    if (fork && fork.newPrimary === primary && secondaries.includes(fork.oldPrimary)) {
      const reconciled = await this.reconcile(fork, shard).catch((error: unknown) => {
        this.log.debug({ err: (error as Error).message, node: fork.oldPrimary }, "the former primary cannot be reconciled yet");
        return false;
      });
      if (!reconciled) secondaries.splice(secondaries.indexOf(fork.oldPrimary), 1);
      if (secondaries.length === 0) return false;
    }
    await Promise.all(secondaries.filter((id) => !this.applied.has(id)).map((id) => this.learnPosition(id, shard)));
    const reachable = secondaries.filter((id) => this.applied.has(id));
    if (reachable.length === 0) return false;
    const from = Math.min(...reachable.map((id) => this.applied.get(id)!));

    const streamController = new AbortController();
    this.streamController = streamController;
    const signal = AbortSignal.any([this.controller.signal, streamController.signal]);
    const stream = this.node(primary).streamChanges(
      nodeagent.StreamChangesRequest.create({ shardId: this.shardId, afterLsn: from, maxEntries: 256, keepaliveMs: this.options.heartbeatIntervalMs }),
      { signal },
    );
    const startedAt = performance.now();
    // Every copy not being fed by this stream, including a former primary not yet reconciled.
    const absent = shard.replicaNodeIds.filter((id) => id !== primary && !this.applied.has(id));
    // Whatever arrived while the last batch was being applied goes in one batch (see core/coalesce.ts).
    try {
      for await (const messages of coalesce(stream, maxBufferedMessages)) {
        if (!(await this.shipBatch(messages, primary, shard, reachable, absent, startedAt))) break;
      }
    } finally {
      streamController.abort(); // ends the call, and with it the read-ahead
    }
    return true;
  }

  /** Apply one batch of stream messages on the secondaries; false when the stream must start over. */
  private async shipBatch(messages: nodeagent.StreamChangesResponse[], primary: string, shard: common.ShardInfo, reachable: string[], absent: string[], startedAt: number): Promise<boolean> {
    const current = this.options.directory.shard(this.shardId);
    if (!current || current.primaryNodeId !== primary || current.epoch !== shard.epoch) return false;
    // A copy that was unreachable may be back (or a copy was added): start over to take it in.
    if ((absent.length > 0 || current.replicaNodeIds.length !== shard.replicaNodeIds.length) && performance.now() - startedAt > 2 * this.options.heartbeatIntervalMs) return false;
    this.headLsn = Math.max(this.headLsn, ...messages.map((message) => message.headLsn));
    const entries = messages.flatMap((message) => message.entries).map((encoded) => ({ encoded, lsn: decodeLsn(encoded) }));
    for (const entry of entries) this.rememberEntryTime(entry.encoded, entry.lsn);
    if (entries.length > 0) {
      this.options.metrics.shipped.inc(entries.length);
      this.options.metrics.bytes.inc(entries.reduce((sum, e) => sum + e.encoded.length, 0));
      await Promise.all(reachable.map((id) => this.applyTo(id, entries, current)));
    }
    await this.acknowledge(primary, current);
    this.updateLag(current);
    // A secondary left behind the stream (resynced, or failing) needs a new stream from its position.
    return reachable.every((id) => this.applied.has(id));
  }

  private async applyTo(nodeId: string, entries: Array<{ encoded: string; lsn: number }>, shard: common.ShardInfo): Promise<void> {
    const have = this.applied.get(nodeId);
    if (have === undefined) return;
    const pending = entries.filter((e) => e.lsn > have);
    if (pending.length === 0) return;
    if (pending[0]!.lsn !== have + 1) {
      this.applied.delete(nodeId);
      return;
    }
    try {
      const response = await this.node(nodeId).applyChanges(
        nodeagent.ApplyChangesRequest.create({ shard: { shardId: this.shardId, epoch: shard.epoch }, entries: pending.map((e) => e.encoded) }),
        { deadlineMs: 30_000 },
      );
      this.applied.set(nodeId, response.appliedLsn);
    } catch (error) {
      this.applied.delete(nodeId);
      const reason = isMyceliumError(error) ? error.reason : undefined;
      if (reason === "REPLICA_DIVERGED" || reason === "REPLICATION_GAP") {
        this.log.warn({ node: nodeId, reason, err: (error as Error).message }, "copy cannot follow the log; resyncing it from a snapshot");
        if (reason === "REPLICA_DIVERGED") this.options.metrics.checksumMismatches.inc();
        await this.resync(nodeId, shard);
      } else if (reason === "STALE_EPOCH") {
        await this.demote(nodeId, shard);
      }
    }
  }

  private async learnPosition(nodeId: string, shard: common.ShardInfo): Promise<void> {
    try {
      const state = await this.node(nodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: this.shardId }), { deadlineMs: this.options.heartbeatIntervalMs });
      if (state.isPrimary || state.epoch < shard.epoch) await this.demote(nodeId, shard);
      this.applied.set(nodeId, state.appliedLsn);
    } catch {
      // Unreachable: tried again on the next stream.
    }
  }

  private async acknowledge(primary: string, shard: common.ShardInfo): Promise<void> {
    // Only synchronous commits wait for acknowledgements: on an asynchronous shard they are kept to a few
    // per second instead of one round trip per batch.
    const now = performance.now();
    if (this.options.directory.syncReplicas(shard.table) > 0 || now - this.lastAcknowledgedAt >= asyncAckIntervalMs) {
      this.lastAcknowledgedAt = now;
      try {
        await this.node(primary).ackReplication(
          nodeagent.AckReplicationRequest.create({ shardId: this.shardId, epoch: shard.epoch, applied: Object.fromEntries(this.applied) }),
          { deadlineMs: this.options.heartbeatIntervalMs },
        );
      } catch {
        // The next batch acknowledges again.
      }
    }
    const slowest = Math.min(...[...this.applied.values()]);
    const retain = this.options.retainEntries ?? 10_000;
    if (Number.isFinite(slowest) && slowest - retain > 0 && this.applied.size === shard.replicaNodeIds.length - 1 && !(await this.options.directory.fork(this.shardId))) {
      await this.node(primary).truncateChanges(nodeagent.TruncateChangesRequest.create({ shardId: this.shardId, throughLsn: slowest - retain }), { deadlineMs: 5000 }).catch(() => undefined);
    }
  }

  private async demote(nodeId: string, shard: common.ShardInfo): Promise<void> {
    await this.node(nodeId)
      .demote(nodeagent.DemoteRequest.create({ shard: { shardId: this.shardId, epoch: shard.epoch }, primaryNodeId: shard.primaryNodeId }), { deadlineMs: this.options.heartbeatIntervalMs })
      .catch(() => undefined);
  }

  /** Replace a copy with a snapshot of the primary's, chunk by chunk. */
  private async resync(nodeId: string, shard: common.ShardInfo): Promise<void> {
    const session = `${this.options.replicatorId}-${this.shardId}-${nodeId}-${Date.now()}`;
    const target = this.node(nodeId);
    let sequence = 0;
    let pending: string | null = null;
    const send = (chunk: string, last: boolean) =>
      target.restoreSnapshot(nodeagent.RestoreSnapshotRequest.create({ shard: { shardId: this.shardId, epoch: shard.epoch }, table: shard.table, sessionId: session, sequence: sequence++, chunk, last }), { deadlineMs: 60_000 });
    for await (const message of this.node(shard.primaryNodeId).snapshot(nodeagent.SnapshotRequest.create({ shardId: this.shardId }), { signal: this.controller.signal })) {
      if (pending !== null) await send(pending, false);
      pending = message.chunk;
    }
    if (pending === null) throw new Error(`snapshot of ${this.shardId} was empty`);
    const restored = await send(pending, true);
    this.applied.set(nodeId, restored.lsn);
    this.options.metrics.resyncs.inc();
    this.log.warn({ node: nodeId, lsn: restored.lsn }, "copy resynced from the primary's snapshot");
  }

  /**
   * A former primary is reachable again. Its entries past the fork that the new primary never saw are
   * compared with what happened since: those touching no row changed meanwhile are re-applied on the new
   * primary (they become new transactions there), the others go to the conflict journal. Then the former
   * primary becomes an ordinary secondary by restoring the new primary's snapshot.
   */
  private async reconcile(fork: { shardId: string; oldPrimary: string; forkLsn: number; epoch: number }, shard: common.ShardInfo): Promise<boolean> {
    const old = this.node(fork.oldPrimary);
    const demoted = await old.demote(nodeagent.DemoteRequest.create({ shard: { shardId: this.shardId, epoch: shard.epoch }, primaryNodeId: shard.primaryNodeId }), { deadlineMs: this.options.heartbeatIntervalMs });
    const primaryState = await this.node(shard.primaryNodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: this.shardId }), { deadlineMs: 5000 });
    const theirs = await this.readLog(fork.oldPrimary, fork.forkLsn, demoted.appliedLsn);
    const divergent = divergentEntries(theirs, fork.oldPrimary, primaryState.versionVector);
    this.log.debug({ node: fork.oldPrimary, forkLsn: fork.forkLsn, theirLsn: demoted.appliedLsn, read: theirs.length, divergent: divergent.length, versionVector: primaryState.versionVector }, "comparing a returning primary's log");
    if (divergent.length > 0) {
      const sinceFork = await this.readLog(shard.primaryNodeId, fork.forkLsn, primaryState.appliedLsn);
      const known = new Set(sinceFork.map((e) => e.txId).filter(Boolean));
      const { reapply, conflicting } = classifyDivergence(
        divergent.filter((e) => !(e.txId && known.has(e.txId))).map(toRows),
        sinceFork.map(toRows),
      );
      for (const entry of reapply.filter((candidate) => candidate.entry.ddl?.length)) conflicting.push({ entry, reasons: ["a schema change on the former primary only"] });
      for (const entry of reapply) {
        if (entry.entry.ddl?.length) continue;
        await this.node(shard.primaryNodeId).execute(
          nodeagent.ExecuteRequest.create({
            shard: { shardId: this.shardId, epoch: shard.epoch },
            statements: rowChangesToStatements(entry.entry.changes).map((s) => ({ sql: s.sql, params: s.params.map(toValue) })),
            mode: nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT,
          }),
          { deadlineMs: 30_000 },
        );
        this.options.metrics.reapplied.inc();
      }
      for (const { entry, reasons } of conflicting) {
        const record = await this.options.journal.add({ shardId: this.shardId, originNodeId: fork.oldPrimary, entry: entry.encoded, txId: entry.entry.txId, reasons });
        this.options.metrics.conflicts.inc();
        this.log.error({ conflictId: record.conflictId, txId: entry.txId, reasons }, "divergent transaction conflicts; journaled for an operator (mycelium conflicts)");
      }
      this.log.warn({ node: fork.oldPrimary, divergent: divergent.length, reapplied: reapply.length, conflicting: conflicting.length }, "reconciled a returning primary");
    }
    this.applied.delete(fork.oldPrimary);
    await this.resync(fork.oldPrimary, shard);
    await this.options.directory.clearFork(this.shardId);
    return true;
  }

  /** Entries of a copy's log in (after, through]. */
  private async readLog(nodeId: string, after: number, through: number): Promise<Array<ChangeEntry & { encoded: string }>> {
    const result: Array<ChangeEntry & { encoded: string }> = [];
    if (through <= after) return result;
    const controller = new AbortController();
    const stream = this.node(nodeId).streamChanges(nodeagent.StreamChangesRequest.create({ shardId: this.shardId, afterLsn: after, maxEntries: 1024, keepaliveMs: 1000 }), {
      signal: AbortSignal.any([controller.signal, this.controller.signal]),
      deadlineMs: 60_000,
    });
    try {
      for await (const message of stream) {
        for (const encoded of message.entries) {
          const entry = decodeChangeEntry(encoded);
          if (entry.lsn <= through) result.push({ ...entry, encoded });
        }
        if ((result[result.length - 1]?.lsn ?? after) >= through || message.entries.length === 0) break;
      }
    } finally {
      controller.abort();
    }
    return result;
  }

  // ---- verification --------------------------------------------------------------------------

  /** Compare each secondary's checksum with the primary's at the same position; resync on mismatch. */
  private async verifyTick(): Promise<void> {
    const shard = this.options.directory.shard(this.shardId);
    if (!shard?.primaryNodeId) return;
    for (const nodeId of shard.replicaNodeIds.filter((id) => id !== shard.primaryNodeId)) {
      const secondary = await this.node(nodeId).getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: this.shardId }), { deadlineMs: 5000 }).catch(() => null);
      if (!secondary || secondary.appliedLsn === 0) continue;
      const primary = await this.node(shard.primaryNodeId)
        .getReplicaState(nodeagent.GetReplicaStateRequest.create({ shardId: this.shardId, checksumAtLsn: secondary.appliedLsn }), { deadlineMs: 5000 })
        .catch(() => null);
      const scan = await this.node(nodeId).verifyChecksum(nodeagent.VerifyChecksumRequest.create({ shardId: this.shardId }), { deadlineMs: 60_000 }).catch(() => null);
      const logMismatch = primary && primary.checksumAtLsn && primary.checksumAtLsn !== secondary.checksum;
      const scanMismatch = scan && !scan.ok;
      if (logMismatch || scanMismatch) {
        this.options.metrics.checksumMismatches.inc();
        this.log.error({ node: nodeId, lsn: secondary.appliedLsn, primary: primary?.checksumAtLsn, secondary: secondary.checksum, scan: scan ? { incremental: scan.incremental, scanned: scan.scanned } : null }, "checksum mismatch; resyncing the copy");
        this.applied.delete(nodeId);
        await this.resync(nodeId, shard);
        this.streamController?.abort();
      }
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  private node(nodeId: string): NodeClient {
    const address = this.options.directory.nodeAddress(nodeId);
    if (!address) throw new Error(`node ${nodeId} has no known address`);
    return this.options.clients.service(nodeagent.NodeAgentServiceService, address);
  }

  private rememberEntryTime(encoded: string, lsn: number): void {
    const match = /"committedAtMs":(\d+)/.exec(encoded);
    if (match) this.entryTimes.set(lsn, Number(match[1]));
    // Bounded: only the recent past matters for lag.
    if (this.entryTimes.size > 20_000) {
      const oldest = [...this.entryTimes.keys()].sort((a, b) => a - b).slice(0, 10_000);
      for (const key of oldest) this.entryTimes.delete(key);
    }
  }

  private updateLag(_shard: common.ShardInfo): void {
    for (const [nodeId, lsn] of this.applied) {
      this.options.metrics.lagEntries.set({ shard: this.shardId, node: nodeId }, Math.max(0, this.headLsn - lsn));
      const oldest = lsn < this.headLsn ? this.entryTimes.get(lsn + 1) : undefined;
      this.options.metrics.lagSeconds.set({ shard: this.shardId, node: nodeId }, oldest ? Math.max(0, Date.now() - oldest) / 1000 : 0);
    }
  }
}

function decodeLsn(encoded: string): number {
  const match = /"lsn":(\d+)/.exec(encoded);
  return match ? Number(match[1]) : decodeChangeEntry(encoded).lsn;
}

function toRows(entry: ChangeEntry & { encoded: string }): EntryRows & { entry: ChangeEntry; encoded: string } {
  return {
    lsn: entry.lsn,
    txId: entry.txId ?? "",
    origin: entry.origin,
    originSeq: entry.originSeq,
    rows: entry.changes.map((c) => ({ table: c.table, key: c.key })),
    entry,
    encoded: entry.encoded,
  };
}

