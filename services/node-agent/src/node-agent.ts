import { isDbError, type LocalTransaction, type ShardStore, type Statement, type StatementResult } from "@mycelium/db";
import { common, fromValue, nodeagent, toRow } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { FaultPoints } from "@mycelium/runtime";
import type { Logger, Telemetry } from "@mycelium/telemetry";
import { toMyceliumError } from "./core/db-errors";
import { OutcomeMemory } from "./core/outcome-memory";
import { notHostedError, ShardAssignments, staleEpochError, type Assignment } from "./core/shard-assignments";
import { ReplicaManager } from "./replica-manager";
import { SchemaVersions } from "./schema-versions";

export interface NodeAgentOptions {
  nodeId: string;
  store: ShardStore;
  telemetry: Telemetry;
  /** MYCELIUM_TRANSACTION_TIMEOUT: an open transaction idle this long is rolled back. */
  transactionTimeoutMs: number;
  /** MYCELIUM_MAX_TRANSACTIONS: open distributed transactions on this node at once. */
  maxTransactions: number;
  /** Ask the router for this node's current shards (used when a caller is ahead of us). */
  refreshAssignments: () => Promise<void>;
  /** Crash points for recovery tests. @default none */
  faults?: FaultPoints;
  /**
   * Local transactions that may be open at once. On PostgreSQL each holds a pooled connection, so this
   * is below DATABASE_MAX_CONNECTIONS: waiting for a connection while holding locks others wait for
   * would deadlock across transactions. @default maxTransactions
   */
  maxOpenLocalTransactions?: number;
  /** A write without a valid lease waits this long for the replicator. @default 3000 */
  leaseWaitMs?: number;
  /** A synchronous commit waits this long for its secondaries (MYCELIUM_COMMIT_TIMEOUT). @default 5000 */
  replicationWaitMs?: number;
}

interface OpenTransaction {
  tx: LocalTransaction;
  idleTimer: NodeJS.Timeout | null;
  idleTimeoutMs: number;
  /** Serializes statements of one transaction on one shard (a client may pipeline). */
  queue: Promise<unknown>;
}

/**
 * One node's behaviour, independent of gRPC: SQL on the shards it holds, with epoch fencing, and the
 * participant side of two-phase commit.
 */
export class NodeAgent {
  readonly assignments = new ShardAssignments();
  private readonly open = new Map<string, OpenTransaction>();
  private readonly outcomes = new OutcomeMemory();
  /** Shards assigned to this node whose local database is not set up yet (retried every heartbeat). */
  private readonly unprepared = new Set<string>();
  private readonly log: Logger;
  private readonly metrics;

  private readonly faults: FaultPoints;
  /** Versioned DDL and each shard's schema state (schema-versions.ts). */
  readonly schemaVersions: SchemaVersions;
  /** Leases, the change log, applying as a secondary, promotion and demotion (replica-manager.ts). */
  readonly replication: ReplicaManager;

  constructor(private readonly options: NodeAgentOptions) {
    this.log = options.telemetry.logger.child({ component: "node-agent" });
    this.faults = options.faults ?? FaultPoints.none();
    this.schemaVersions = new SchemaVersions(options.store, this.faults, this.log); // schema versioning hook
    this.replication = new ReplicaManager({
      nodeId: options.nodeId,
      store: options.store,
      assignments: this.assignments,
      telemetry: options.telemetry,
      leaseWaitMs: options.leaseWaitMs ?? 3000,
      replicationWaitMs: options.replicationWaitMs ?? 5000,
      onSchemaChanged: (shardId) => this.schemaVersions.invalidate(shardId),
    });
    const m = options.telemetry.metrics;
    const store = options.store;
    this.metrics = {
      statements: m.counter({ name: "mycelium_node_statements_total", help: "Statements executed, by mode and outcome.", labelNames: ["mode", "outcome"] as const }),
      participant: m.counter({ name: "mycelium_node_participant_operations_total", help: "2PC participant operations, by operation and outcome.", labelNames: ["operation", "outcome"] as const }),
      idleAborts: m.counter({ name: "mycelium_node_transaction_timeouts_total", help: "Open transactions rolled back after MYCELIUM_TRANSACTION_TIMEOUT without word from the coordinator." }),
      open: m.gauge({ name: "mycelium_node_transactions_open", help: "Distributed transactions open on this node." }),
      cache: m.gauge({
        name: "mycelium_db_statement_cache_entries",
        help: "Prepared statements cached.",
        collect() {
          this.set(store.stats().statementCache.size);
        },
      }),
      cacheHits: (() => {
        // The database layer keeps the count; the counter follows it at each scrape.
        let seen = 0;
        return m.counter({
          name: "mycelium_db_statement_cache_hits_total",
          help: "Statement cache hits.",
          collect() {
            const hits = store.stats().statementCache.hits;
            if (hits > seen) this.inc(hits - seen);
            seen = hits;
          },
        });
      })(),
    };
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  // ---- execution --------------------------------------------------------------------------------------

  async execute(request: nodeagent.ExecuteRequest): Promise<StatementResult[]> {
    const ref = requireShard(request.shard);
    const statements: Statement[] = request.statements.map((s) => ({ sql: s.sql, params: s.params.map(fromValue) }));
    if (statements.length === 0) throw new MyceliumError("INVALID_ARGUMENT", "no statements to execute");
    const mode = request.mode;
    const label = modeLabel(mode);
    try {
      await this.checkEpoch(ref, mode !== nodeagent.ExecuteMode.EXECUTE_MODE_READ && !request.readOnly);
      const visible = this.visibleShards(request, ref);
      let results: StatementResult[];
      switch (mode) {
        case nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT:
          results = await this.options.store.executeAutocommit(ref.shardId, statements, { epoch: ref.epoch });
          if (results.some((r) => r.rowsAffected > 0)) await this.replication.awaitReplication(ref.shardId);
          break;
        case nodeagent.ExecuteMode.EXECUTE_MODE_READ:
          results = await this.readAll(ref.shardId, statements, visible);
          break;
        case nodeagent.ExecuteMode.EXECUTE_MODE_TRANSACTION:
          results = await this.executeInTransaction(request.txId, ref, statements, request.readOnly && !request.lockingRead, request.idleTimeoutMs, request.readOnly && request.lockingRead, visible);
          break;
        default:
          throw new MyceliumError("INVALID_ARGUMENT", "execute mode is required (AUTOCOMMIT, TRANSACTION or READ)");
      }
      this.metrics.statements.inc({ mode: label, outcome: "ok" }, statements.length);
      return results;
    } catch (error) {
      this.metrics.statements.inc({ mode: label, outcome: "error" });
      throw toMyceliumError(error, { shardId: ref.shardId });
    }
  }

  private async readAll(shardId: string, statements: Statement[], visibleShards: readonly string[] = []): Promise<StatementResult[]> {
    const results: StatementResult[] = [];
    for (const statement of statements) results.push(await this.options.store.read(shardId, statement.sql, statement.params, { visibleShards }));
    return results;
  }

  /**
   * The other shards a read joins with (co-located partners, reference tables), each held here at the
   * epoch the router planned with or newer. They are read from this node's copy, which may be a
   * secondary: such a read is as fresh as that copy (see `mycelium shards` for lag).
   */
  private visibleShards(request: nodeagent.ExecuteRequest, ref: common.ShardRef): string[] {
    if (request.visibleShards.length === 0) return [];
    const lockFree =
      request.mode === nodeagent.ExecuteMode.EXECUTE_MODE_READ ||
      (request.mode === nodeagent.ExecuteMode.EXECUTE_MODE_TRANSACTION && request.readOnly && !request.lockingRead && !this.open.has(transactionKey(request.txId, ref.shardId)));
    if (!lockFree) {
      throw new MyceliumError(
        "FAILED_PRECONDITION",
        `a statement that writes, or reads under its transaction's locks, cannot read other shards' tables (a co-located or reference-table join) yet; run the join as a plain read, outside the transaction or in a read-committed one`,
        { reason: "JOIN_NEEDS_PLAIN_READ", details: { shardId: ref.shardId } },
      );
    }
    for (const other of request.visibleShards) {
      const held = this.assignments.get(other.shardId);
      if (!held || held.epoch < other.epoch) {
        throw new MyceliumError("FAILED_PRECONDITION", `node ${this.nodeId} holds no copy of shard ${other.shardId} at epoch ${other.epoch} for this join; route it again`, {
          reason: "STALE_EPOCH",
          details: { shardId: other.shardId },
        });
      }
    }
    return request.visibleShards.map((other) => other.shardId);
  }

  /** `lockFree`: a read that may run on the committed state when the transaction holds no lock here. */
  private async executeInTransaction(txId: string, ref: common.ShardRef, statements: Statement[], lockFree: boolean, idleTimeoutMs: number, lockingRead = false, visible: readonly string[] = []): Promise<StatementResult[]> {
    if (!txId) throw new MyceliumError("INVALID_ARGUMENT", "tx_id is required in TRANSACTION mode");
    const shardId = ref.shardId;
    const key = transactionKey(txId, shardId);
    let entry = this.open.get(key);
    if (!entry) {
      if (this.outcomes.get(key)) {
        throw new MyceliumError("ABORTED", `transaction ${txId} already finished on shard ${shardId}`, { reason: "TRANSACTION_FINISHED" });
      }
      // A read before the transaction wrote here needs no lock: the latest committed state is what it would see.
      if (lockFree) return this.readAll(shardId, statements, visible);
      if (this.open.size >= this.options.maxTransactions) {
        throw new MyceliumError("RESOURCE_EXHAUSTED", `node ${this.nodeId} has ${this.open.size} open transactions (MYCELIUM_MAX_TRANSACTIONS); retry later`, { reason: "MAX_TRANSACTIONS" });
      }
      const connectionBound = this.options.maxOpenLocalTransactions ?? this.options.maxTransactions;
      if (this.open.size >= connectionBound) {
        // Abort rather than queue: this transaction may hold locks elsewhere that the holders of the
        // connections are waiting for. The client retries the whole transaction.
        throw new MyceliumError("ABORTED", `node ${this.nodeId} has ${this.open.size} transactions open, one per database connection (MYCELIUM_DATABASE_MAX_CONNECTIONS); retry the transaction, or raise the limit`, {
          reason: "CONNECTIONS_EXHAUSTED",
        });
      }
      const tx = await this.options.store.begin(shardId, txId, { epoch: ref.epoch });
      entry = { tx, idleTimer: null, idleTimeoutMs: idleTimeoutMs > 0 ? idleTimeoutMs : this.options.transactionTimeoutMs, queue: Promise.resolve() };
      this.open.set(key, entry);
      this.metrics.open.set(this.open.size);
    }
    const current = entry;
    this.touch(key, current);
    try {
      return await this.enqueue(current, async () => {
        if (lockingRead && this.options.store.kind === "postgres") await lockShardTablesShared(current.tx);
        const results: StatementResult[] = [];
        for (const statement of statements) results.push(await current.tx.execute(statement.sql, statement.params));
        return results;
      });
    } finally {
      this.touch(key, current);
    }
  }

  /**
   * Run `operation` after everything already queued on this transaction here: statements, prepare,
   * commit, abort and the idle timeout never overlap (an abort arriving during a prepare waits for it).
   */
  private enqueue<T>(entry: OpenTransaction, operation: () => Promise<T>): Promise<T> {
    const run = entry.queue.then(operation);
    entry.queue = run.catch(() => undefined);
    return run;
  }

  /** (Re)arm the idle timer: a transaction the coordinator forgot is rolled back, releasing the shard. */
  private touch(key: string, entry: OpenTransaction): void {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    if (entry.tx.state === "prepared") {
      entry.idleTimer = null;
      return;
    }
    entry.idleTimer = setTimeout(() => {
      void this.enqueue(entry, async () => {
        // A prepare may have run meanwhile: a prepared transaction waits for its decision instead.
        if (entry.tx.state === "prepared" || this.open.get(key) !== entry) return;
        this.metrics.idleAborts.inc();
        this.log.warn({ txId: entry.tx.txId, shardId: entry.tx.shardId, idleMs: entry.idleTimeoutMs }, "rolling back idle transaction");
        await this.finish(key, entry, "aborted");
      });
    }, entry.idleTimeoutMs);
    entry.idleTimer.unref();
  }

  private async finish(key: string, entry: OpenTransaction, outcome: "committed" | "aborted"): Promise<void> {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    this.open.delete(key);
    this.metrics.open.set(this.open.size);
    this.outcomes.remember(key, outcome);
    if (outcome === "aborted") await entry.tx.rollback().catch((error: unknown) => this.log.error({ err: error, key }, "rollback failed"));
  }

  // ---- two-phase commit, participant side -----------------------------------------------------------

  async prepare(txId: string, ref: common.ShardRef | undefined): Promise<nodeagent.PrepareResponse> {
    const shard = requireShard(ref);
    const key = transactionKey(txId, shard.shardId);
    const entry = this.open.get(key);
    if (!entry) {
      this.metrics.participant.inc({ operation: "prepare", outcome: "no" });
      const finished = this.outcomes.get(key);
      return nodeagent.PrepareResponse.create({
        vote: nodeagent.Vote.VOTE_NO,
        reason: finished ? `transaction already ${finished} on shard ${shard.shardId}` : `transaction ${txId} is not open on shard ${shard.shardId} (idle timeout or node restart)`,
      });
    }
    return this.enqueue(entry, async () => {
      if (this.open.get(key) !== entry) {
        return nodeagent.PrepareResponse.create({ vote: nodeagent.Vote.VOTE_NO, reason: `transaction ${txId} ended on shard ${shard.shardId} before it could prepare` });
      }
      try {
        if (entry.tx.state === "prepared") return nodeagent.PrepareResponse.create({ vote: nodeagent.Vote.VOTE_YES });
        if (entry.tx.state !== "open") {
          await this.finish(key, entry, "aborted");
          return nodeagent.PrepareResponse.create({ vote: nodeagent.Vote.VOTE_NO, reason: `a statement of the transaction failed on shard ${shard.shardId}` });
        }
        // A prepared transaction must be finishable here: only under a valid lease.
        await this.replication.requireWriteLease(shard.shardId, this.assignments.get(shard.shardId)?.epoch ?? shard.epoch);
        await entry.tx.prepare();
        this.faults.hit("node.after-prepare");
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
        entry.idleTimer = null;
        this.metrics.participant.inc({ operation: "prepare", outcome: "yes" });
        // "Crash right after voting yes": give the answer a moment to leave, then die.
        setTimeout(() => this.faults.hit("node.after-vote"), 20);
        return nodeagent.PrepareResponse.create({ vote: nodeagent.Vote.VOTE_YES, headLsn: await this.options.store.headLsn(shard.shardId) });
      } catch (error) {
        this.metrics.participant.inc({ operation: "prepare", outcome: "error" });
        this.log.warn({ err: error, txId, shardId: shard.shardId }, "prepare failed; voting no");
        await this.finish(key, entry, "aborted");
        return nodeagent.PrepareResponse.create({ vote: nodeagent.Vote.VOTE_NO, reason: `prepare failed on shard ${shard.shardId}: ${(error as Error).message}` });
      }
    });
  }

  /** Commit this node's part: one-phase if open, second phase if prepared. Idempotent. */
  async commit(txId: string, ref: common.ShardRef | undefined): Promise<void> {
    const shard = requireShard(ref);
    this.faults.hit("node.before-commit");
    const key = transactionKey(txId, shard.shardId);
    const entry = this.open.get(key);
    try {
      if (entry) {
        await this.enqueue(entry, async () => {
          if (this.open.get(key) !== entry) throw new MyceliumError("ABORTED", `transaction ${txId} ended on shard ${shard.shardId} before the commit`, { reason: "TRANSACTION_ABORTED" });
          if (entry.tx.state === "failed") {
            await this.finish(key, entry, "aborted");
            throw new MyceliumError("ABORTED", `a statement of transaction ${txId} failed on shard ${shard.shardId}; it was rolled back`, { reason: "STATEMENT_FAILED" });
          }
          await entry.tx.commit();
          await this.finish(key, entry, "committed");
        });
        await this.replication.awaitReplication(shard.shardId);
      } else {
        const outcome = this.outcomes.get(key);
        if (outcome === "committed") return;
        if (outcome === "aborted") {
          throw new MyceliumError("ABORTED", `transaction ${txId} was rolled back on shard ${shard.shardId}`, { reason: "TRANSACTION_ABORTED" });
        }
        // After a restart or a promotion: a prepared transaction lives only in the store.
        await this.options.store.commitPrepared(shard.shardId, txId);
        this.outcomes.remember(key, "committed");
        await this.replication.awaitReplication(shard.shardId);
      }
      this.metrics.participant.inc({ operation: "commit", outcome: "ok" });
    } catch (error) {
      this.metrics.participant.inc({ operation: "commit", outcome: "error" });
      if (isDbError(error, "NOT_PREPARED")) {
        throw new MyceliumError("ABORTED", `transaction ${txId} is not prepared on shard ${shard.shardId} (rolled back)`, { reason: "NOT_PREPARED" });
      }
      throw toMyceliumError(error, { shardId: shard.shardId });
    }
  }

  /** Roll back this node's part, prepared or not. Idempotent; unknown transactions are fine. */
  async abort(txId: string, ref: common.ShardRef | undefined): Promise<void> {
    const shard = requireShard(ref);
    const key = transactionKey(txId, shard.shardId);
    const entry = this.open.get(key);
    try {
      if (entry) {
        await this.enqueue(entry, async () => {
          if (this.open.get(key) === entry) await this.finish(key, entry, "aborted");
        });
      } else {
        // Ask the store even when we remember an abort: it is the authority on what is prepared. On a
        // secondary, the transaction's adopted redo is forgotten.
        await this.options.store.abortPrepared(shard.shardId, txId);
        await this.replication.discardAdopted(shard.shardId, txId);
        this.outcomes.remember(key, "aborted");
      }
      this.metrics.participant.inc({ operation: "abort", outcome: "ok" });
    } catch (error) {
      this.metrics.participant.inc({ operation: "abort", outcome: "error" });
      if (isDbError(error, "ALREADY_COMMITTED")) {
        throw new MyceliumError("FAILED_PRECONDITION", `transaction ${txId} already committed on shard ${shard.shardId}`, { reason: "ALREADY_COMMITTED" });
      }
      throw toMyceliumError(error, { shardId: shard.shardId });
    }
  }

  // ---- schema and status ------------------------------------------------------------------------------

  async applySchema(request: nodeagent.ApplySchemaRequest): Promise<nodeagent.ApplySchemaResponse | void> {
    const ref = requireShard(request.shard);
    this.assignments.learn({ shardId: ref.shardId, table: request.table, epoch: ref.epoch, primaryNodeId: this.assignments.get(ref.shardId)?.primaryNodeId ?? "" });
    if (request.migrationId) return this.schemaVersions.apply(ref.shardId, request); // schema versioning hook: versioned DDL
    try {
      await this.options.store.ensureShard(ref.shardId);
      await this.options.store.applySchema(ref.shardId, request.ddl);
    } catch (error) {
      // A retried DDL that already took effect here is done, not an error.
      if (isDbError(error, "ALREADY_EXISTS")) return;
      throw toMyceliumError(error, { shardId: ref.shardId });
    }
  }

  async status(): Promise<nodeagent.GetStatusResponse> {
    const replicas = await Promise.all(
      this.assignments.all.map(async (assignment) =>
        common.ShardReplica.create({
          shardId: assignment.shardId,
          epoch: assignment.epoch,
          role: assignment.primaryNodeId === this.nodeId ? common.ReplicaRole.REPLICA_ROLE_PRIMARY : common.ReplicaRole.REPLICA_ROLE_SECONDARY,
          sizeBytes: await this.options.store.sizeBytes(assignment.shardId).catch(() => 0),
        }),
      ),
    );
    const stats = this.options.store.stats();
    return nodeagent.GetStatusResponse.create({
      nodeId: this.nodeId,
      replicas,
      storedBytes: replicas.reduce((sum, r) => sum + r.sizeBytes, 0),
      openTransactions: this.open.size,
      preparedTransactions: stats.preparedTransactions,
    });
  }

  async listPrepared(): Promise<nodeagent.PreparedTransaction[]> {
    const prepared = await this.options.store.recoverPrepared();
    return prepared.map((p) =>
      nodeagent.PreparedTransaction.create({
        txId: p.txId,
        shardId: p.shardId,
        statements: (p.statements ?? []).map((s) => ({ sql: s.sql, params: toRow(s.params).values })),
        preparedAtMs: p.preparedAtMs,
      }),
    );
  }

  /** Create local databases for newly assigned shards, and retry those that could not be set up before. */
  async onAssigned(added: Assignment[]): Promise<void> {
    for (const assignment of added) this.unprepared.add(assignment.shardId);
    for (const shardId of [...this.unprepared]) {
      if (!this.assignments.get(shardId)) {
        this.unprepared.delete(shardId); // no longer this node's: nothing to set up
        continue;
      }
      try {
        await this.options.store.ensureShard(shardId);
        this.unprepared.delete(shardId);
      } catch (error) {
        // E.g. a recovered prepared transaction still holds the shard's locks: try again next heartbeat.
        this.log.warn({ err: error, shardId }, "could not set the shard up yet; retrying");
      }
    }
  }

  /** Roll back the open (not prepared) transactions of one shard: it is no longer this node's to write. */
  async abortShard(shardId: string): Promise<void> {
    for (const [key, entry] of [...this.open]) {
      if (entry.tx.shardId !== shardId) continue;
      await this.enqueue(entry, async () => {
        if (this.open.get(key) === entry && entry.tx.state !== "prepared") await this.finish(key, entry, "aborted");
      });
    }
  }

  /** Roll back every open (not prepared) transaction; prepared ones stay durable for recovery. */
  async close(): Promise<void> {
    for (const [key, entry] of this.open) {
      if (entry.tx.state !== "prepared") await this.finish(key, entry, "aborted");
      else if (entry.idleTimer) clearTimeout(entry.idleTimer);
    }
  }

  private async checkEpoch(ref: common.ShardRef, write: boolean): Promise<void> {
    let check = this.assignments.check(ref.shardId, ref.epoch);
    if (!check.ok && check.kind === "behind") {
      await this.options.refreshAssignments();
      check = this.assignments.check(ref.shardId, ref.epoch);
    }
    if (!check.ok) {
      if (check.kind === "stale") throw staleEpochError(ref.shardId, ref.epoch, check.known);
      throw notHostedError(ref.shardId, this.nodeId);
    }
    if (write && check.assignment.primaryNodeId && check.assignment.primaryNodeId !== this.nodeId) {
      throw new MyceliumError("FAILED_PRECONDITION", `node ${this.nodeId} is not the primary of shard ${ref.shardId} (${check.assignment.primaryNodeId} is); route it again`, {
        reason: "STALE_EPOCH",
        details: { shardId: ref.shardId },
      });
    }
    if (write) await this.replication.requireWriteLease(ref.shardId, ref.epoch);
  }
}

/**
 * A locking read on PostgreSQL. SQLite's write lock already covers the whole shard; PostgreSQL locks
 * rows, and a plain read does not wait for transactions that hold row locks — not even prepared ones,
 * whose effects are not visible yet. SHARE mode on the shard's tables waits for every writer (prepared
 * transactions keep their locks) and holds writers off until this transaction ends, so what it reads
 * is committed everywhere it looks: the same guarantee as SQLite's shard lock.
 */
async function lockShardTablesShared(tx: LocalTransaction): Promise<void> {
  const { rows } = await tx.execute(
    "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE '\\_myc\\_%'",
    [],
  );
  const tables = rows[0]?.[0];
  if (typeof tables === "string" && tables.length > 0) await tx.execute(`LOCK TABLE ${tables} IN SHARE MODE`, []);
}

export function transactionKey(txId: string, shardId: string): string {
  return `${txId}/${shardId}`;
}

function requireShard(ref: common.ShardRef | undefined): common.ShardRef {
  if (!ref || !ref.shardId) throw new MyceliumError("INVALID_ARGUMENT", "shard is required");
  return ref;
}

function modeLabel(mode: nodeagent.ExecuteMode): string {
  switch (mode) {
    case nodeagent.ExecuteMode.EXECUTE_MODE_AUTOCOMMIT:
      return "autocommit";
    case nodeagent.ExecuteMode.EXECUTE_MODE_TRANSACTION:
      return "transaction";
    case nodeagent.ExecuteMode.EXECUTE_MODE_READ:
      return "read";
    default:
      return "unspecified";
  }
}

export function toResultSet(result: StatementResult): common.ResultSet {
  return common.ResultSet.create({
    columns: result.columns,
    rows: result.rows.map(toRow),
    rowsAffected: result.rowsAffected,
    lastInsertRowid: typeof result.lastInsertRowid === "bigint" ? Number(result.lastInsertRowid) : (result.lastInsertRowid ?? 0),
  });
}
