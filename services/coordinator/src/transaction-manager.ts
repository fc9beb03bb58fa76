import { randomUUID } from "node:crypto";
import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { common, fromRow, nodeagent, router, toRow, type SqlValue } from "@mycelium/proto";
import { backoffDelayMs, isMyceliumError, MyceliumError, sleep } from "@mycelium/rpc";
import { FaultPoints } from "@mycelium/runtime";
import { annotateActiveSpan, spanAttributes, type Logger, type Telemetry } from "@mycelium/telemetry";
import type { DecisionInput, DecisionLog } from "@mycelium/topology";
import type { ClusterClient } from "./adapters/cluster-client";
import { DecisionBatcher, DoneMarker } from "./adapters/decision-batcher";
import { EventHub } from "./core/events";
import { mergeResults } from "./core/merge";
import { isFinal, planCommit, TransactionRecord, type Participant, type TransactionState } from "./core/transaction-state";

export interface TransactionLimits {
  /** MYCELIUM_TRANSACTION_TIMEOUT: an open transaction idle this long is aborted. */
  transactionTimeoutMs: number;
  /** MYCELIUM_PREPARE_TIMEOUT: the prepare phase must finish within this, or the transaction aborts. */
  prepareTimeoutMs: number;
  /** MYCELIUM_COMMIT_TIMEOUT: bound on one commit attempt (decided commits are retried until done). */
  commitTimeoutMs: number;
  /** MYCELIUM_MAX_TRANSACTIONS: transactions open at once on this coordinator. */
  maxTransactions: number;
  /** Deadline of one statement on the shards. @default 30000 */
  statementTimeoutMs?: number;
  /** Statements queued with AddOperation per transaction. @default 10000 */
  maxQueuedOperations?: number;
  /**
   * How long a one-shot statement or transaction that certainly did not apply (its primary was
   * unreachable or had no lease, or it aborted before the decision) keeps being routed again, to ride
   * out a failover: about MYCELIUM_REPLICATION_HEARTBEAT_TIMEOUT plus two intervals. @default 0
   */
  failoverWaitMs?: number;
}

export interface TransactionManagerOptions {
  coordinatorId: string;
  cluster: ClusterClient;
  decisions: DecisionLog;
  telemetry: Telemetry;
  limits: TransactionLimits;
  /** Crash points for recovery tests. @default none */
  faults?: FaultPoints;
  /** Schema versioning hook (migrations.ts): runs DDL as a versioned migration. @default straight to every replica */
  ddl?: (statement: common.Statement, plan: router.RoutePlan) => Promise<common.ResultSet>;
}

interface ActiveTransaction {
  record: TransactionRecord;
  queued: common.Statement[];
  timeoutMs: number;
  idleTimer: NodeJS.Timeout | null;
  /** Operations of one transaction run one at a time, in arrival order. */
  chain: Promise<unknown>;
  /** Why the transaction ended on its own (timeout, failed statement), for the next caller. */
  endedBecause: string | null;
  implicit: boolean;
  /** Reads take shard locks until the end (serializable across shards) unless read committed. */
  lockingReads: boolean;
}

type CommitKind = "read_only" | "one_phase" | "two_phase";

/**
 * The coordinator's transactions: interactive (Begin/Execute/Commit), queued (AddOperation), one-shot
 * (ExecuteTransaction) and single statements. Commit is one-phase when one shard was written and
 * presumed-abort two-phase otherwise; the COMMIT record in the decision log is the commit point.
 */
export class TransactionManager {
  readonly events = new EventHub();
  private readonly active = new Map<string, ActiveTransaction>();
  /** Decided two-phase commits whose participants have not all acknowledged (in this process). */
  private readonly committing = new Set<string>();
  private readonly batcher: DecisionBatcher;
  private readonly doneMarker: DoneMarker;
  private readonly log: Logger;
  private readonly metrics;
  private stopping = false;
  private readonly faults: FaultPoints;

  constructor(private readonly options: TransactionManagerOptions) {
    this.log = options.telemetry.logger.child({ component: "transactions" });
    this.faults = options.faults ?? FaultPoints.none();
    const m = options.telemetry.metrics;
    this.metrics = {
      transactions: m.counter({ name: "mycelium_transactions_total", help: "Finished transactions by outcome and commit kind.", labelNames: ["outcome", "kind"] as const }),
      timeouts: m.counter({ name: "mycelium_transaction_timeouts_total", help: "Transactions aborted by a timeout, by phase.", labelNames: ["phase"] as const }),
      phase: m.histogram({ name: "mycelium_transaction_phase_duration_seconds", help: "Time spent in each phase of a commit.", labelNames: ["phase"] as const }),
      duration: m.histogram({ name: "mycelium_transaction_duration_seconds", help: "Begin to end of a transaction, by outcome.", labelNames: ["outcome"] as const }),
      activeGauge: m.gauge({ name: "mycelium_transactions_active", help: "Transactions open on this coordinator." }),
      reroutes: m.counter({ name: "mycelium_statement_reroutes_total", help: "Statements routed again after a stale shard epoch." }),
      decisionBatch: m.histogram({ name: "mycelium_decision_batch_size", help: "Decisions written per control-store transaction (group commit).", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256] }),
    };
    this.batcher = new DecisionBatcher(options.decisions, { onBatch: (size) => this.metrics.decisionBatch.observe(size) });
    this.doneMarker = new DoneMarker(options.decisions, (error) => this.log.warn({ err: error }, "could not record acknowledgements; recovery will resend"));
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** Transactions whose state is known only to this process, for GetDecision and in-doubt listings. */
  localState(txId: string): TransactionState | undefined {
    return this.active.get(txId)?.record.state ?? (this.committing.has(txId) ? "committing" : undefined);
  }

  // ---- the API -------------------------------------------------------------------------------------

  begin(timeoutMs = 0, implicit = false, readCommitted = false): string {
    if (this.stopping) throw new MyceliumError("UNAVAILABLE", "coordinator is shutting down; retry on another replica", { reason: "SHUTTING_DOWN" });
    const { maxTransactions } = this.options.limits;
    if (this.active.size >= maxTransactions) {
      throw new MyceliumError("RESOURCE_EXHAUSTED", `${this.active.size} transactions are open on this coordinator (MYCELIUM_MAX_TRANSACTIONS=${maxTransactions}); retry with backoff`, {
        reason: "MAX_TRANSACTIONS",
      });
    }
    const txId = randomUUID();
    const entry: ActiveTransaction = {
      record: new TransactionRecord(txId, Date.now()),
      queued: [],
      timeoutMs: timeoutMs > 0 ? timeoutMs : this.options.limits.transactionTimeoutMs,
      idleTimer: null,
      chain: Promise.resolve(),
      endedBecause: null,
      implicit,
      lockingReads: !readCommitted,
    };
    this.active.set(txId, entry);
    this.metrics.activeGauge.set(this.active.size);
    this.armIdleTimer(entry);
    this.events.emit({ type: "state_changed", txId, oldState: "none", newState: "active" });
    annotateActiveSpan({ [spanAttributes.txId]: txId });
    return txId;
  }

  /** Run one statement now: inside `txId`, or as its own transaction when txId is empty. */
  async execute(txId: string, statement: common.Statement): Promise<common.ResultSet> {
    if (!txId) {
      // Routing is inside the retry (a copy behind on its schema, a failover under way); DDL is not: it
      // is a migration of one statement that resumes itself when sent again, and running it afresh
      // after a partial failure would find the table already changed.
      let ddl: router.RoutePlan | null = null;
      const result = await this.retryIfNotApplied(async () => {
        const plan = await this.route(statement);
        if (plan.kind !== router.StatementKind.STATEMENT_KIND_DDL) return this.executeAlone(statement, plan);
        ddl = plan;
        return null;
      });
      if (ddl) return this.options.ddl ? this.options.ddl(statement, ddl) : this.executeDdl(statement, ddl);
      return result!;
    }
    return this.serialized(txId, async (entry) => {
      const plan = await this.route(statement);
      if (plan.kind === router.StatementKind.STATEMENT_KIND_DDL) {
        throw new MyceliumError("INVALID_ARGUMENT", "DDL cannot run inside a transaction; run it on its own", { reason: "DDL_IN_TRANSACTION" });
      }
      return this.executeInTransaction(entry, statement, plan);
    });
  }

  async addOperation(txId: string, statement: common.Statement): Promise<number> {
    return this.serialized(txId, async (entry) => {
      const limit = this.options.limits.maxQueuedOperations ?? 10_000;
      if (entry.queued.length >= limit) {
        throw new MyceliumError("RESOURCE_EXHAUSTED", `transaction ${txId} already queues ${limit} operations; commit it or use ExecuteTransaction`, { reason: "TOO_MANY_OPERATIONS" });
      }
      entry.queued.push(statement);
      return entry.queued.length;
    });
  }

  /** Run the queued operations, then commit. Returns the queued operations' results. */
  async commit(txId: string): Promise<common.ResultSet[]> {
    return this.serialized(txId, async (entry) => {
      const results: common.ResultSet[] = [];
      for (const statement of entry.queued.splice(0)) {
        const plan = await this.route(statement);
        if (plan.kind === router.StatementKind.STATEMENT_KIND_DDL) {
          throw new MyceliumError("INVALID_ARGUMENT", "DDL cannot run inside a transaction; run it on its own", { reason: "DDL_IN_TRANSACTION" });
        }
        results.push(await this.executeInTransaction(entry, statement, plan));
      }
      await this.finishCommit(entry);
      return results;
    }, { finishing: true });
  }

  async rollback(txId: string): Promise<void> {
    const entry = this.active.get(txId);
    if (!entry) return; // Rolling back a finished or unknown transaction is a no-op: the outcome stands.
    await entry.chain.catch(() => undefined);
    if (this.active.get(txId) !== entry) return;
    await this.abort(entry, "rolled back by the client");
  }

  /** Begin, run every statement, commit — with a one-round-trip fast path when all touch one shard. */
  async executeTransaction(statements: common.Statement[]): Promise<{ txId: string; results: common.ResultSet[] }> {
    if (statements.length === 0) throw new MyceliumError("INVALID_ARGUMENT", "no statements to execute");
    return this.retryIfNotApplied(() => this.executeTransactionOnce(statements));
  }

  /**
   * Run a one-shot operation again while it fails in a way that proves nothing was applied: a primary
   * that could not be reached or refused for lack of a lease or an old epoch, or a two-phase commit that
   * aborted before its decision. This rides out a failover instead of handing it to every client.
   */
  private async retryIfNotApplied<T>(work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.options.limits.failoverWaitMs ?? 0);
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!certainlyNotApplied(error) || Date.now() >= deadline || this.stopping) throw error;
        this.metrics.reroutes.inc();
        await sleep(Math.min(1000, 100 * attempt));
      }
    }
  }

  private async executeTransactionOnce(statements: common.Statement[]): Promise<{ txId: string; results: common.ResultSet[] }> {
    const plans = await Promise.all(statements.map((s) => this.route(s)));
    if (plans.some((p) => p.kind === router.StatementKind.STATEMENT_KIND_DDL)) {
      throw new MyceliumError("INVALID_ARGUMENT", "DDL cannot run inside a transaction; run it on its own", { reason: "DDL_IN_TRANSACTION" });
    }
    const shardIds = new Set(plans.flatMap((p) => p.targets.map((t) => t.shard?.shardId)));
    if (shardIds.size === 1 && plans.every((p) => p.targets.length === 1)) {
      const txId = this.begin(0, true);
      const entry = this.active.get(txId)!;
      try {
        const results = await this.onePhaseBatch(entry, statements, plans);
        return { txId, results };
      } catch (error) {
        if (this.active.get(txId) === entry) await this.abort(entry, describe(error));
        throw error;
      }
    }
    try {
      return await this.executeGrouped(statements, plans);
    } catch (error) {
      // Nothing of an aborted attempt remains, so a shard that moved meanwhile costs one more routing.
      if (!isStaleEpoch(error)) throw error;
      this.metrics.reroutes.inc();
      return this.executeGrouped(statements, await Promise.all(statements.map((s) => this.route(s))));
    }
  }

  /**
   * A known set of statements over several shards. Statements on different shards cannot see each
   * other, so only the order within each shard matters: each shard's statements go in one call, and
   * shards are visited in sorted order — transactions that all lock in one order cannot deadlock.
   */
  private async executeGrouped(statements: common.Statement[], plans: router.RoutePlan[]): Promise<{ txId: string; results: common.ResultSet[] }> {
    const groups = new Map<string, { target: router.ShardTarget; items: Array<{ index: number; statement: common.Statement; write: boolean }> }>();
    plans.forEach((plan, index) => {
      for (const target of plan.targets) {
        const shardId = target.shard!.shardId;
        const group = groups.get(shardId) ?? { target, items: [] };
        group.items.push({ index, statement: target.statement!, write: plan.isWrite });
        groups.set(shardId, group);
      }
    });
    const txId = this.begin(0, true);
    try {
      const parts: common.ResultSet[][] = plans.map(() => []);
      for (const shardId of [...groups.keys()].sort()) {
        const { target, items } = groups.get(shardId)!;
        const written = items.some((item) => item.write);
        await this.serialized(txId, async (entry) => {
          entry.record.touch(participantOf(target, written, true, items.filter((item) => item.write).map((item) => item.statement)));
          const response = await this.callNode(target.primaryAddress, (node, deadlineMs) =>
            node.execute(
              nodeagent.ExecuteRequest.create({
                txId,
                shard: target.shard,
                statements: items.map((item) => item.statement),
                mode: nodeagent.ExecuteMode.EXECUTE_MODE_TRANSACTION,
                readOnly: !written,
                lockingRead: true,
                idleTimeoutMs: entry.timeoutMs + this.options.limits.prepareTimeoutMs,
                visibleShards: visibleOf(target),
              }),
              { deadlineMs },
            ),
          );
          items.forEach((item, i) => parts[item.index]!.push(response.results[i]!));
        });
      }
      await this.serialized(txId, (entry) => this.finishCommit(entry), { finishing: true });
      return { txId, results: plans.map((plan, i) => this.combine(plan, parts[i]!)) };
    } catch (error) {
      const entry = this.active.get(txId);
      if (entry) await this.abort(entry, describe(error));
      throw error;
    }
  }

  async explain(statement: common.Statement): Promise<router.RoutePlan> {
    return this.route(statement);
  }

  // ---- statements ----------------------------------------------------------------------------------

  /** A statement outside any transaction. */
  private async executeAlone(statement: common.Statement, routed?: router.RoutePlan): Promise<common.ResultSet> {
    const plan = routed ?? (await this.route(statement));
    if (plan.kind === router.StatementKind.STATEMENT_KIND_DDL) return this.options.ddl ? this.options.ddl(statement, plan) : this.executeDdl(statement, plan); // schema versioning hook
    if (!plan.isWrite) {
      return this.withReroute(statement, plan, async (current) => {
        const parts = await Promise.all(current.targets.map((target) => this.runOnShard(target, { mode: nodeagent.ExecuteMode.EXECUTE_MODE_READ, readOnly: true })));
        return this.combine(current, parts.map((p) => p[0]!));
      });
    }
    if (plan.targets.length === 1) {
      // One written shard: its own local transaction is the whole transaction (one phase, no decision record).
      const txId = this.begin(0, true);
      const entry = this.active.get(txId)!;
      try {
        const [result] = await this.onePhaseBatch(entry, [statement], [plan]);
        return result!;
      } catch (error) {
        if (this.active.get(txId) === entry) await this.abort(entry, describe(error));
        throw error;
      }
    }
    const txId = this.begin(0, true);
    try {
      const result = await this.serialized(txId, (entry) => this.executeInTransaction(entry, statement, plan));
      await this.serialized(txId, (entry) => this.finishCommit(entry), { finishing: true });
      return result;
    } catch (error) {
      const entry = this.active.get(txId);
      if (entry) await this.abort(entry, describe(error));
      throw error;
    }
  }

  /** All statements on one shard: one AUTOCOMMIT round trip, committed by the node-agent (group commit). */
  private async onePhaseBatch(entry: ActiveTransaction, statements: common.Statement[], plans: router.RoutePlan[]): Promise<common.ResultSet[]> {
    const started = performance.now();
    this.transition(entry, "committing");
    let results: common.ResultSet[];
    try {
      results = await this.withRerouteBatch(statements, plans, async (current) => {
        const t = current[0]!.targets[0]!;
        return this.callNode(t.primaryAddress, (node, deadlineMs) =>
          node.execute(
            nodeagent.ExecuteRequest.create({
              txId: entry.record.txId,
              shard: t.shard,
              statements: current.map((p) => p.targets[0]!.statement!),
              mode: nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT,
              visibleShards: current.flatMap((p) => visibleOf(p.targets[0]!)),
            }),
            { deadlineMs },
          ),
        ).then((response) => response.results);
      });
    } catch (error) {
      this.transition(entry, "aborted");
      this.end(entry, false, "one_phase", describe(error));
      if (isMyceliumError(error) && (error.code === "DEADLINE_EXCEEDED" || (error.code === "UNAVAILABLE" && !error.reason && !notDelivered(error)))) {
        throw new MyceliumError(error.code, `${error.message}; the write may or may not have committed — check before retrying`, { reason: "COMMIT_OUTCOME_UNKNOWN", cause: error });
      }
      throw error;
    }
    this.transition(entry, "committed");
    this.metrics.phase.observe({ phase: "one_phase_commit" }, (performance.now() - started) / 1000);
    this.end(entry, true, "one_phase");
    return results;
  }

  private async executeInTransaction(entry: ActiveTransaction, statement: common.Statement, plan: router.RoutePlan): Promise<common.ResultSet> {
    if (entry.record.state !== "active") {
      throw new MyceliumError("FAILED_PRECONDITION", `transaction ${entry.record.txId} is ${entry.record.state}; no more statements`, { reason: "NOT_ACTIVE" });
    }
    return this.withReroute(statement, plan, async (current, isRetry) => {
      const locking = current.isWrite || entry.lockingReads;
      for (const target of current.targets) {
        // Recorded before the call: if the call fails midway, rollback must still reach this shard.
        try {
          entry.record.touch(participantOf(target, current.isWrite, locking, current.isWrite ? [target.statement!] : []));
        } catch (error) {
          throw new MyceliumError("ABORTED", (error as Error).message, { reason: "SHARD_MOVED" });
        }
      }
      const run = (target: router.ShardTarget) =>
        this.runOnShard(target, {
          mode: nodeagent.ExecuteMode.EXECUTE_MODE_TRANSACTION,
          txId: entry.record.txId,
          readOnly: !current.isWrite,
          lockingRead: !current.isWrite && entry.lockingReads,
          idleTimeoutMs: entry.timeoutMs + this.options.limits.prepareTimeoutMs,
        });
      let settled: PromiseSettledResult<common.ResultSet[]>[];
      if (locking && current.targets.length > 1) {
        // Locks are taken one shard at a time in sorted order (see executeGrouped), so a statement over
        // many shards cannot deadlock with others that do the same.
        const order = current.targets.map((target, index) => ({ target, index })).sort((a, b) => (a.target.shard!.shardId < b.target.shard!.shardId ? -1 : 1));
        settled = new Array(current.targets.length);
        let failed = false;
        for (const { target, index } of order) {
          if (failed) {
            settled[index] = { status: "rejected", reason: new MyceliumError("ABORTED", "an earlier shard failed") };
            continue;
          }
          try {
            settled[index] = { status: "fulfilled", value: await run(target) };
          } catch (reason) {
            settled[index] = { status: "rejected", reason };
            failed = true;
          }
        }
      } else {
        settled = await Promise.allSettled(current.targets.map(run));
      }
      const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected").map((s) => s.reason as unknown);
      if (failures.length > 0) {
        const stale = failures.every(isStaleEpoch);
        // Re-routing is safe only when no shard ran the statement: otherwise part of it is already inside the transaction.
        if (stale && failures.length === settled.length && !isRetry) throw failures[0];
        if (failures.some(isStaleEpoch)) {
          throw new MyceliumError("ABORTED", "a shard moved while the statement ran on several shards; retry the transaction", { reason: "STALE_EPOCH" });
        }
        throw failures[0];
      }
      return this.combine(current, settled.map((s) => (s as PromiseFulfilledResult<common.ResultSet[]>).value[0]!));
    });
  }

  private async executeDdl(statement: common.Statement, plan: router.RoutePlan): Promise<common.ResultSet> {
    const table = plan.ddlTable;
    const calls: Array<() => Promise<unknown>> = [];
    // The primary only: secondaries replay the DDL from the change log, at the same point as the primary.
    for (const target of plan.targets) {
      calls.push(() =>
        this.callNode(target.primaryAddress, (node, deadlineMs) =>
          node.applySchema(nodeagent.ApplySchemaRequest.create({ shard: target.shard, table, ddl: [statement.sql] }), { deadlineMs, idempotent: true }),
        ),
      );
    }
    const failures = (await runBounded(calls, 16)).filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failures.length > 0) {
      const first = failures[0]!.reason as Error;
      throw new MyceliumError(
        isMyceliumError(first) ? first.code : "UNAVAILABLE",
        `DDL reached ${calls.length - failures.length} of ${calls.length} shards of ${table}; first failure: ${first.message}. The statement is safe to run again.`,
        { reason: "DDL_INCOMPLETE" },
      );
    }
    await this.options.cluster.recordSchema(table, [statement.sql], { deadlineMs: 10_000 });
    return common.ResultSet.create({ columns: [], rows: [], rowsAffected: 0 });
  }

  /** Run one routed target on its primary and return the per-statement results. */
  private async runOnShard(target: router.ShardTarget, how: { mode: nodeagent.ExecuteMode; txId?: string; readOnly: boolean; lockingRead?: boolean; idleTimeoutMs?: number }): Promise<common.ResultSet[]> {
    const response = await this.callNode(target.primaryAddress, (node, deadlineMs) =>
      node.execute(
        nodeagent.ExecuteRequest.create({
          txId: how.txId ?? "",
          shard: target.shard,
          statements: [target.statement!],
          mode: how.mode,
          readOnly: how.readOnly,
          lockingRead: how.lockingRead ?? false,
          idleTimeoutMs: how.idleTimeoutMs ?? 0,
          visibleShards: visibleOf(target),
        }),
        { deadlineMs, idempotent: how.mode === nodeagent.ExecuteMode.EXECUTE_MODE_READ },
      ),
    );
    return response.results;
  }

  private combine(plan: router.RoutePlan, parts: common.ResultSet[]): common.ResultSet {
    if (parts.length === 1) return parts[0]!;
    if (plan.isWrite) {
      return common.ResultSet.create({
        columns: parts.find((p) => p.columns.length)?.columns ?? [],
        rows: parts.flatMap((p) => p.rows),
        rowsAffected: parts.reduce((sum, p) => sum + p.rowsAffected, 0),
      });
    }
    const merged = mergeResults(plan.merge, parts.map((p) => ({ columns: p.columns, rows: p.rows.map(fromRow) })));
    return common.ResultSet.create({ columns: merged.columns, rows: merged.rows.map((row: SqlValue[]) => toRow(row)) });
  }

  private async route(statement: common.Statement): Promise<router.RoutePlan> {
    // A span of its own (DESIGN §8: route, prepare, decide, commit), naming the tables, so a trace
    // can be found by table (`mycelium traces tail --table`).
    return spanned(this.options.telemetry.tracer, "route", async (span) => {
      const plan = await this.options.cluster.route(statement, { deadlineMs: 10_000 });
      span.setAttributes({ [spanAttributes.tables]: plan.tables, "mycelium.targets": plan.targets.length });
      return plan;
    });
  }

  /** Run `work` with the plan; if every shard refused it for a stale epoch, route once more and retry. */
  private async withReroute<T>(statement: common.Statement, plan: router.RoutePlan, work: (plan: router.RoutePlan, isRetry: boolean) => Promise<T>): Promise<T> {
    try {
      return await work(plan, false);
    } catch (error) {
      if (!isStaleEpoch(error)) throw error;
      this.metrics.reroutes.inc();
      return work(await this.route(statement), true);
    }
  }

  private async withRerouteBatch<T>(statements: common.Statement[], plans: router.RoutePlan[], work: (plans: router.RoutePlan[]) => Promise<T>): Promise<T> {
    try {
      return await work(plans);
    } catch (error) {
      if (!isStaleEpoch(error)) throw error;
      this.metrics.reroutes.inc();
      const fresh = await Promise.all(statements.map((s) => this.route(s)));
      const shardIds = new Set(fresh.flatMap((p) => p.targets.map((t) => t.shard?.shardId)));
      if (shardIds.size !== 1 || fresh.some((p) => p.targets.length !== 1)) {
        throw new MyceliumError("ABORTED", "the shard split or moved while the transaction was routed; retry it", { reason: "STALE_EPOCH" });
      }
      return work(fresh);
    }
  }

  // ---- commit --------------------------------------------------------------------------------------

  private async finishCommit(entry: ActiveTransaction): Promise<void> {
    const { record } = entry;
    const plan = planCommit(record.participants);
    const tracer = this.options.telemetry.tracer;
    try {
      await this.decideAndCommit(entry, plan, tracer);
    } finally {
      // Read locks are held until the outcome is known (strict two-phase locking), then released.
      await this.release(record.txId, plan.release.filter((p) => p.locked));
    }
  }

  private async decideAndCommit(entry: ActiveTransaction, plan: ReturnType<typeof planCommit>, tracer: Telemetry["tracer"]): Promise<void> {
    const { record } = entry;
    if (plan.kind === "read-only") {
      this.transition(entry, "committing");
      this.transition(entry, "committed");
      this.end(entry, true, "read_only");
      return;
    }
    if (plan.kind === "one-phase") {
      this.transition(entry, "committing");
      const started = performance.now();
      try {
        await this.commitParticipant(record.txId, plan.participant, 3);
      } catch (error) {
        if (isMyceliumError(error) && error.code === "ABORTED") {
          this.transition(entry, "aborted");
          this.end(entry, false, "one_phase", error.message);
          throw error;
        }
        // The node holds the outcome; we could not learn it. Say so rather than guess.
        this.transition(entry, "aborted");
        this.end(entry, false, "one_phase", describe(error));
        throw new MyceliumError("UNAVAILABLE", `commit of transaction ${record.txId} on shard ${plan.participant.shardId} did not answer; its outcome is unknown — check before retrying`, {
          reason: "COMMIT_OUTCOME_UNKNOWN",
          cause: error,
        });
      }
      this.metrics.phase.observe({ phase: "one_phase_commit" }, (performance.now() - started) / 1000);
      this.transition(entry, "committed");
      this.end(entry, true, "one_phase");
      return;
    }
    // Two-phase, presumed abort.
    await spanned(tracer, "2pc.prepare", async (span) => {
      span.setAttribute(spanAttributes.participants, plan.voters.length);
      this.transition(entry, "preparing");
      const started = performance.now();
      let yes = 0;
      const votes = await Promise.allSettled(
        plan.voters.map((p) =>
          this.prepareParticipant(record.txId, p).then((refusal) => {
            if (refusal === null && ++yes === 1) this.faults.hit("coordinator.after-first-prepare");
            return refusal;
          }),
        ),
      );
      this.metrics.phase.observe({ phase: "prepare" }, (performance.now() - started) / 1000);
      const refusals = votes
        .map((vote, i) => (vote.status === "rejected" ? `${plan.voters[i]!.shardId}: ${describe(vote.reason)}` : vote.value))
        .filter((reason): reason is string => Boolean(reason));
      if (refusals.length > 0) {
        if (votes.some((v) => v.status === "rejected" && isMyceliumError(v.reason) && v.reason.code === "DEADLINE_EXCEEDED")) this.metrics.timeouts.inc({ phase: "prepare" });
        await this.abort(entry, `prepare failed: ${refusals.join("; ")}`);
        throw new MyceliumError("ABORTED", `transaction ${record.txId} aborted: ${refusals.join("; ")}`, { reason: "PREPARE_FAILED" });
      }
      this.transition(entry, "prepared");
      this.faults.hit("coordinator.after-all-prepares");
    });
    const decision: DecisionInput = {
      txId: record.txId,
      decision: "commit",
      participants: plan.voters.map((p) => ({ shardId: p.shardId, nodeId: p.nodeId, epoch: p.epoch })),
      coordinatorId: this.options.coordinatorId,
      atMs: Date.now(),
    };
    const decided = await spanned(tracer, "2pc.decide", async () => {
      const started = performance.now();
      try {
        const result = await this.batcher.record(decision);
        this.metrics.phase.observe({ phase: "decide" }, (performance.now() - started) / 1000);
        return result.ok;
      } catch (error) {
        // Not recorded means not committed (presumed abort): abort, and say why.
        this.log.error({ err: error, txId: record.txId }, "could not record commit decision; aborting");
        return false;
      }
    });
    if (!decided) {
      await this.abort(entry, "the commit decision could not be recorded (or a participant was told to abort first)");
      throw new MyceliumError("ABORTED", `transaction ${record.txId} aborted: its commit decision could not be recorded`, { reason: "DECISION_FAILED" });
    }
    // Committed from here on, whatever happens to this process.
    this.faults.hit("coordinator.after-decision");
    this.transition(entry, "committing");
    this.committing.add(record.txId);
    const started = performance.now();
    await spanned(tracer, "2pc.commit", async () => {
      let acknowledged = 0;
      const deliveries = plan.voters.map((p) =>
        this.commitParticipant(record.txId, p, Number.POSITIVE_INFINITY).then(() => {
          this.doneMarker.mark(record.txId, p.shardId);
          if (++acknowledged === 1) this.faults.hit("coordinator.after-first-commit");
        }),
      );
      // Answer the client once every participant acknowledged, or after one commit timeout — whichever
      // is first; unacknowledged participants keep being retried here and by recovery.
      const all = Promise.allSettled(deliveries).then(() => this.committing.delete(record.txId));
      await Promise.race([all, sleep(this.options.limits.commitTimeoutMs)]);
    });
    this.metrics.phase.observe({ phase: "commit" }, (performance.now() - started) / 1000);
    this.transition(entry, "committed");
    this.end(entry, true, "two_phase");
  }

  /** Roll back the local transactions that only held read locks (best effort; idle timeouts catch the rest). */
  private async release(txId: string, participants: Participant[]): Promise<void> {
    await Promise.allSettled(
      participants.map((participant) =>
        this.callNode(participant.address, (node) =>
          node.abort(nodeagent.AbortRequest.create({ txId, shard: { shardId: participant.shardId, epoch: participant.epoch } }), {
            deadlineMs: this.options.limits.commitTimeoutMs,
            idempotent: true,
          }),
        ),
      ),
    );
  }

  /**
   * Returns null for a yes vote, else the reason for no. The shard's secondaries are given the
   * transaction's redo at the same time, so a secondary promoted after the primary fails can finish
   * it; with synchronous replication at least sync_replicas of them must have it before the vote counts.
   */
  private async prepareParticipant(txId: string, participant: Participant): Promise<string | null> {
    const vote = await this.askVote(txId, participant);
    if (vote.refusal !== null) return vote.refusal;
    const adopted = await this.adoptOnSecondaries(txId, participant, vote.headLsn);
    const needed = participant.syncReplicas ?? 0;
    if (adopted < needed) {
      return `${participant.shardId}: only ${adopted} of the ${needed} secondaries that synchronous replication requires hold the prepared transaction`;
    }
    return null;
  }

  /** How many secondaries took the redo (to re-run it from `headLsn` if promoted). */
  private async adoptOnSecondaries(txId: string, participant: Participant, headLsn: number): Promise<number> {
    const secondaries = participant.secondaryAddresses ?? [];
    if (secondaries.length === 0 || !participant.redo?.length) return 0;
    const request = nodeagent.AdoptPreparedRequest.create({
      txId,
      shard: { shardId: participant.shardId, epoch: participant.epoch },
      statements: participant.redo as common.Statement[],
      minAppliedLsn: headLsn,
    });
    const results = await Promise.allSettled(
      secondaries.map((address) => this.callNode(address, (node) => node.adoptPrepared(request, { deadlineMs: this.options.limits.prepareTimeoutMs, idempotent: true }))),
    );
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length > 0) {
      this.log.debug({ txId, shardId: participant.shardId, failed: failed.length, err: (failed[0] as PromiseRejectedResult).reason }, "a secondary did not take the prepared transaction's redo");
    }
    return results.length - failed.length;
  }

  private async askVote(txId: string, participant: Participant): Promise<{ refusal: string | null; headLsn: number }> {
    const response = await this.callNode(
      participant.address,
      (node) =>
        node.prepare(nodeagent.PrepareRequest.create({ txId, shard: { shardId: participant.shardId, epoch: participant.epoch } }), {
          deadlineMs: this.options.limits.prepareTimeoutMs,
        }),
    );
    return {
      refusal: response.vote === nodeagent.Vote.VOTE_YES ? null : `${participant.shardId} voted no: ${response.reason || "no reason given"}`,
      headLsn: response.headLsn,
    };
  }


  /**
   * Deliver COMMIT to one participant, each attempt bounded by COMMIT_TIMEOUT, retrying with backoff
   * up to `maxAttempts` (a decided two-phase commit passes Infinity: it is delivered until acknowledged
   * or this process stops, and recovery takes over after that).
   */
  async commitParticipant(txId: string, participant: Participant, maxAttempts: number): Promise<void> {
    const policy = { initialDelayMs: 50, maxDelayMs: 5000, multiplier: 2, maxAttempts: 0 };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.callNode(participant.address, (node) =>
          node.commit(nodeagent.CommitRequest.create({ txId, shard: { shardId: participant.shardId, epoch: participant.epoch } }), {
            deadlineMs: this.options.limits.commitTimeoutMs,
            idempotent: true,
          }),
        );
        return;
      } catch (error) {
        const movedAway = isMyceliumError(error) && error.reason === "STALE_EPOCH";
        if (!movedAway && isMyceliumError(error) && (error.code === "ABORTED" || error.code === "FAILED_PRECONDITION" || error.code === "PERMISSION_DENIED")) throw error;
        if (attempt >= maxAttempts || this.stopping) throw error;
        if (isMyceliumError(error) && error.code === "DEADLINE_EXCEEDED") this.metrics.timeouts.inc({ phase: "commit" });
        await sleep(Math.max(20, backoffDelayMs(policy, attempt)));
        // The shard may have failed over: its new primary took the prepared transaction over.
        const current = await this.options.cluster.shardPrimary(participant.shardId).catch(() => undefined);
        if (current) {
          participant.address = current.address;
          participant.nodeId = current.nodeId;
          participant.epoch = current.epoch;
        }
      }
    }
  }

  private async abort(entry: ActiveTransaction, reason: string): Promise<void> {
    const { record } = entry;
    if (isFinal(record.state) || record.state === "aborting") return;
    this.transition(entry, "aborting");
    const started = performance.now();
    await Promise.allSettled(
      record.participants.map(async (participant) => {
        for (let attempt = 1; attempt <= 3; attempt++) {
          try {
            await this.callNode(participant.address, (node) =>
              node.abort(nodeagent.AbortRequest.create({ txId: record.txId, shard: { shardId: participant.shardId, epoch: participant.epoch } }), {
                deadlineMs: this.options.limits.commitTimeoutMs,
                idempotent: true,
              }),
            );
            return;
          } catch (error) {
            // A participant we cannot reach rolls back on its own: an open transaction by its idle
            // timeout, a prepared one when it asks for the decision and finds none (presumed abort).
            if (attempt === 3) this.log.warn({ err: error, txId: record.txId, shardId: participant.shardId }, "abort not delivered; the participant will resolve it");
            else await sleep(50 * attempt);
          }
        }
      }),
    );
    // Secondaries forget the redo they adopted (best effort: an adopted redo of an aborted transaction
    // is harmless — were it ever activated, its decision would be abort).
    await Promise.allSettled(
      record.participants
        .filter((p) => p.written && p.secondaryAddresses?.length)
        .flatMap((participant) =>
          participant.secondaryAddresses!.map((address) =>
            this.callNode(address, (node) =>
              node.abort(nodeagent.AbortRequest.create({ txId: record.txId, shard: { shardId: participant.shardId, epoch: participant.epoch } }), {
                deadlineMs: this.options.limits.commitTimeoutMs,
                idempotent: true,
              }),
            ),
          ),
        ),
    );
    this.metrics.phase.observe({ phase: "abort" }, (performance.now() - started) / 1000);
    this.transition(entry, "aborted");
    const plan = planCommit(record.participants);
    this.end(entry, false, plan.kind === "two-phase" ? "two_phase" : plan.kind === "one-phase" ? "one_phase" : "read_only", reason);
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------

  /** Run `work` on the transaction after its previous operations, refreshing its idle timer. */
  private serialized<T>(txId: string, work: (entry: ActiveTransaction) => Promise<T>, options: { finishing?: boolean } = {}): Promise<T> {
    // Every request of an interactive transaction is a trace of its own; the id links them.
    annotateActiveSpan({ [spanAttributes.txId]: txId });
    const entry = this.active.get(txId);
    if (!entry) {
      throw new MyceliumError("NOT_FOUND", `transaction ${txId} is not open on this coordinator (it finished, timed out, or never existed)`, { reason: "NO_TRANSACTION" });
    }
    const run = entry.chain.then(async () => {
      if (this.active.get(txId) !== entry) {
        throw new MyceliumError("ABORTED", `transaction ${txId} ended: ${entry.endedBecause ?? "it finished"}`, { reason: "TRANSACTION_ENDED" });
      }
      this.disarmIdleTimer(entry);
      try {
        const result = await work(entry);
        return result;
      } catch (error) {
        // A failed statement dooms the transaction (the shard's local transaction is aborted too).
        if (this.active.get(txId) === entry && !options.finishing) await this.abort(entry, describe(error));
        else if (this.active.get(txId) === entry && options.finishing && !isFinal(entry.record.state)) await this.abort(entry, describe(error));
        throw error;
      } finally {
        if (this.active.get(txId) === entry) this.armIdleTimer(entry);
      }
    });
    entry.chain = run.catch(() => undefined);
    return run;
  }

  private armIdleTimer(entry: ActiveTransaction): void {
    this.disarmIdleTimer(entry);
    entry.idleTimer = setTimeout(() => {
      if (entry.record.state !== "active" || this.active.get(entry.record.txId) !== entry) return;
      this.metrics.timeouts.inc({ phase: "idle" });
      this.log.info({ txId: entry.record.txId, idleMs: entry.timeoutMs }, "aborting idle transaction");
      const reason = `idle for more than ${entry.timeoutMs} ms (MYCELIUM_TRANSACTION_TIMEOUT)`;
      entry.chain = entry.chain.then(() => this.abort(entry, reason)).catch(() => undefined);
    }, entry.timeoutMs);
    entry.idleTimer.unref();
  }

  private disarmIdleTimer(entry: ActiveTransaction): void {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = null;
  }

  private transition(entry: ActiveTransaction, to: TransactionState): void {
    const from = entry.record.transition(to);
    this.events.emit({ type: "state_changed", txId: entry.record.txId, oldState: from, newState: to });
  }

  private end(entry: ActiveTransaction, success: boolean, kind: CommitKind, reason?: string): void {
    const { record } = entry;
    this.disarmIdleTimer(entry);
    entry.endedBecause = success ? "it committed" : `it aborted (${reason ?? "unknown reason"})`;
    this.active.delete(record.txId);
    this.metrics.activeGauge.set(this.active.size);
    const durationMs = Date.now() - record.startedAtMs;
    this.metrics.transactions.inc({ outcome: success ? "committed" : "aborted", kind });
    this.metrics.duration.observe({ outcome: success ? "committed" : "aborted" }, durationMs / 1000);
    this.events.emit({ type: "completed", txId: record.txId, success, durationMs });
    // Marks the trace that ended the transaction (none when an idle timeout ended it).
    annotateActiveSpan({ [spanAttributes.txId]: record.txId, [spanAttributes.txOutcome]: success ? "committed" : "aborted", [spanAttributes.txCommitKind]: kind });
    if (!success && !entry.implicit) this.log.info({ txId: record.txId, reason }, "transaction aborted");
  }

  private async callNode<T>(address: string, call: (node: ReturnType<ClusterClient["node"]>, deadlineMs: number) => Promise<T>): Promise<T> {
    if (!address) throw new MyceliumError("UNAVAILABLE", "shard has no reachable primary", { reason: "NO_PRIMARY" });
    return call(this.options.cluster.node(address), this.options.limits.statementTimeoutMs ?? 30_000);
  }

  /** Stop taking transactions; abort open ones; let in-flight commits finish (bounded by the caller). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.active.values()].map(async (entry) => {
      await entry.chain.catch(() => undefined);
      if (this.active.get(entry.record.txId) === entry && entry.record.state === "active") await this.abort(entry, "coordinator shutting down");
    }));
    await this.doneMarker.drain();
    this.events.closeAll();
  }
}

function participantOf(target: router.ShardTarget, written: boolean, locked: boolean, redo: common.Statement[] = []): Participant {
  return {
    shardId: target.shard!.shardId,
    epoch: target.shard!.epoch,
    nodeId: target.primaryNodeId,
    address: target.primaryAddress,
    written,
    locked,
    secondaryAddresses: target.replicaAddresses.filter((address, i) => address && target.replicaNodeIds[i] !== target.primaryNodeId),
    syncReplicas: target.syncReplicas,
    redo: redo.map((statement) => ({ sql: statement.sql, params: statement.params })),
  };
}

/** A call that never reached its server (so it cannot have done anything there). */
function notDelivered(error: MyceliumError): boolean {
  // An error with a reason is one of ours, whose message may quote a lower call's connection failure.
  return error.code === "UNAVAILABLE" && !error.reason && /No connection established|ECONNREFUSED|connect ETIMEDOUT|Name resolution failed/.test(error.message);
}

function certainlyNotApplied(error: unknown): boolean {
  if (!isMyceliumError(error)) return false;
  // Refused before anything ran: no lease (failover under way), no primary, an old epoch, a replica at
  // another schema version; or a two-phase commit that aborted before its decision.
  if (["NO_LEASE", "NO_PRIMARY", "STALE_EPOCH", "SCHEMA_VERSION", "PREPARE_FAILED"].includes(error.reason ?? "")) return true;
  return notDelivered(error);
}

/** The other shards a target's statement reads on its node: co-located partners and reference tables. */
function visibleOf(target: router.ShardTarget): common.ShardRef[] {
  return [...target.colocatedShards, ...target.referenceShards];
}

function isStaleEpoch(error: unknown): boolean {
  return isMyceliumError(error) && error.reason === "STALE_EPOCH";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function spanned<T>(tracer: Telemetry["tracer"], name: string, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: describe(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Run thunks with at most `limit` in flight. */
async function runBounded<T>(thunks: Array<() => Promise<T>>, limit: number): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(thunks.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, thunks.length) }, async () => {
    while (next < thunks.length) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await thunks[index]!() };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  });
  await Promise.all(workers);
  return results;
}

