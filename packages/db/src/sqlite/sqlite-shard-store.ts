import * as fs from "node:fs";
import * as path from "node:path";
import { DbError } from "../db-error";
import { assertShardId, assertTxId } from "../identifiers";
import { AsyncLock } from "../internal/async-lock";
import { type ShardTables, sqliteBuilder } from "../internal/kysely";
import type { CacheCounters } from "../internal/lru-cache";
import { observed, type QueryCounters } from "../internal/observe";
import { assertUserStatement } from "../internal/user-statement";
import { assertSqlValues, type SqlValue, type Statement, type StatementResult } from "../sql-value";
import type {
  LocalTransaction,
  LocalTransactionState,
  PreparedTransaction,
  QueryObserver,
  ShardStore,
  ShardStoreStats,
} from "../shard-store";
import { ParticipantLog } from "./participant-log";
import { retryBusy, SqliteConnection } from "./sqlite-connection";

export interface SqliteShardStoreSettings {
  dataDir: string;
  nodeDatabasePath: string;
  synchronous: "FULL" | "NORMAL";
  statementCacheSize: number;
  lockWaitTimeoutMs: number;
  maxLockWaiters: number;
  maxGroupCommitBatch: number;
  onQuery: QueryObserver | undefined;
}

const builder = sqliteBuilder<ShardTables>();

interface AutocommitRequest {
  statements: readonly Statement[];
  resolve: (results: StatementResult[]) => void;
  reject: (error: Error) => void;
}

/** One shard file: a writer connection (serialised by `lock`) and a reader connection (WAL snapshots). */
class SqliteShard {
  readonly lock: AsyncLock;
  /** The transaction holding the write lock, if it is a LocalTransaction (open or prepared). */
  current: SqliteLocalTransaction | null = null;
  autocommitQueue: AutocommitRequest[] = [];
  autocommitScheduled = false;
  dropped = false;

  constructor(
    readonly id: string,
    readonly file: string,
    readonly writer: SqliteConnection,
    readonly reader: SqliteConnection,
    settings: SqliteShardStoreSettings,
  ) {
    this.lock = new AsyncLock(`shard ${id}`, settings.maxLockWaiters, settings.lockWaitTimeoutMs);
  }

  close(): void {
    this.writer.close();
    this.reader.close();
  }
}

export async function openSqliteShardStore(settings: SqliteShardStoreSettings): Promise<ShardStore> {
  const shardsDir = path.join(settings.dataDir, "shards");
  try {
    fs.mkdirSync(shardsDir, { recursive: true });
    fs.mkdirSync(path.dirname(settings.nodeDatabasePath), { recursive: true });
  } catch (error) {
    throw new DbError("IO", `cannot create ${shardsDir}: ${(error as Error).message}`, { cause: error });
  }
  const log = new ParticipantLog(settings.nodeDatabasePath, settings.maxGroupCommitBatch);
  const store = new SqliteShardStore(settings, shardsDir, log);
  try {
    await store.redoPreparedTransactions();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

class SqliteShardStore implements ShardStore {
  readonly kind = "sqlite" as const;
  private readonly shards = new Map<string, SqliteShard>();
  private readonly cacheCounters: CacheCounters = { hits: 0, misses: 0 };
  private readonly counters: QueryCounters = { queryCount: 0, queryErrorCount: 0 };
  private readonly groupCommits = { batches: 0, requests: 0 };
  private closed = false;

  constructor(
    private readonly settings: SqliteShardStoreSettings,
    private readonly shardsDir: string,
    readonly log: ParticipantLog,
  ) {}

  // ---- shards ----------------------------------------------------------------------------------------------

  private shardFile(shardId: string): string {
    return path.join(this.shardsDir, `${shardId}.db`);
  }

  private assertOpen(): void {
    if (this.closed) throw new DbError("CLOSED", "the shard store is closed");
  }

  /** The open shard, opening its file on first use. */
  private shard(shardId: string): SqliteShard {
    this.assertOpen();
    assertShardId(shardId);
    const existing = this.shards.get(shardId);
    if (existing) return existing;
    const file = this.shardFile(shardId);
    if (!fs.existsSync(file)) throw new DbError("SHARD_NOT_FOUND", `this node holds no shard ${shardId}`);
    return this.openShard(shardId, file, false);
  }

  private openShard(shardId: string, file: string, create: boolean): SqliteShard {
    const connection = (queryOnly: boolean, createFile: boolean) =>
      new SqliteConnection(file, {
        create: createFile,
        synchronous: this.settings.synchronous,
        queryOnly,
        statementCacheSize: this.settings.statementCacheSize,
        counters: this.cacheCounters,
      });
    const writer = connection(false, create);
    let reader: SqliteConnection;
    try {
      ensureInternalTables(writer);
      reader = connection(true, false);
    } catch (error) {
      writer.close();
      throw error;
    }
    const shard = new SqliteShard(shardId, file, writer, reader, this.settings);
    this.shards.set(shardId, shard);
    return shard;
  }

  async ensureShard(shardId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    if (this.shards.has(shardId)) return;
    this.openShard(shardId, this.shardFile(shardId), true);
  }

  async dropShard(shardId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    const file = this.shardFile(shardId);
    const shard = this.shards.get(shardId) ?? (fs.existsSync(file) ? this.shard(shardId) : null);
    if (!shard) return;
    if (shard.current?.state === "prepared") {
      throw new DbError("BUSY", `shard ${shardId} has prepared transaction ${shard.current.txId}; resolve it first`);
    }
    const release = await shard.lock.acquire();
    try {
      if (shard.dropped) return;
      shard.dropped = true;
      shard.lock.failWaiters(new DbError("SHARD_NOT_FOUND", `shard ${shardId} was dropped`));
      for (const request of shard.autocommitQueue.splice(0)) {
        request.reject(new DbError("SHARD_NOT_FOUND", `shard ${shardId} was dropped`));
      }
      shard.close();
      this.shards.delete(shardId);
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(`${file}${suffix}`, { force: true });
    } finally {
      release();
    }
  }

  async listShards(): Promise<string[]> {
    this.assertOpen();
    return fs
      .readdirSync(this.shardsDir)
      .filter((name) => name.endsWith(".db"))
      .map((name) => name.slice(0, -3))
      .sort();
  }

  async sizeBytes(shardId: string): Promise<number> {
    const shard = this.shard(shardId);
    let total = 0;
    for (const suffix of ["", "-wal"]) {
      try {
        total += fs.statSync(`${shard.file}${suffix}`).size;
      } catch {
        // no WAL yet
      }
    }
    return total;
  }

  // ---- statements ------------------------------------------------------------------------------------------

  async read(shardId: string, sql: string, params: readonly SqlValue[] = []): Promise<StatementResult> {
    const shard = this.shard(shardId);
    assertUserStatement(sql);
    assertSqlValues(params);
    return observed(this.settings.onQuery, this.counters, "read", shardId, () =>
      retryBusy(
        () => shard.reader.execute(sql, params, `read on shard ${shardId}`, true).result,
        Date.now() + this.settings.lockWaitTimeoutMs,
        `read on shard ${shardId}`,
      ),
    );
  }

  async applySchema(shardId: string, ddl: readonly string[]): Promise<void> {
    const shard = this.shard(shardId);
    for (const statement of ddl) assertUserStatement(statement);
    await observed(this.settings.onQuery, this.counters, "ddl", shardId, () =>
      this.withWriteTransaction(shard, () => {
        ddl.forEach((statement, index) => shard.writer.run(statement, `schema statement ${index + 1} on shard ${shardId}`));
      }),
    );
  }

  async pruneTransactionMarkers(shardId: string, preparedBeforeMs: number): Promise<number> {
    const shard = this.shard(shardId);
    return this.withWriteTransaction(shard, () => {
      shard.writer.query(
        builder.deleteFrom("_myc_txn").where("prepared_at_ms", "<", preparedBeforeMs).compile(),
        `prune markers on shard ${shardId}`,
      );
      return Number(shard.writer.db.prepare("SELECT changes()").pluck().get());
    });
  }

  /** Takes the write lock, runs `body` in BEGIN IMMEDIATE … COMMIT, and releases the lock. */
  private async withWriteTransaction<T>(shard: SqliteShard, body: () => T): Promise<T> {
    const release = await this.acquireWriteLock(shard);
    try {
      await retryBusy(() => shard.writer.run("BEGIN IMMEDIATE", `begin on shard ${shard.id}`), this.lockDeadline(), `begin on shard ${shard.id}`);
      try {
        const result = body();
        shard.writer.run("COMMIT", `commit on shard ${shard.id}`);
        return result;
      } catch (error) {
        if (shard.writer.inTransaction) shard.writer.run("ROLLBACK", `rollback on shard ${shard.id}`);
        throw error;
      }
    } finally {
      release();
    }
  }

  private lockDeadline(): number {
    return Date.now() + this.settings.lockWaitTimeoutMs;
  }

  private async acquireWriteLock(shard: SqliteShard): Promise<() => void> {
    const release = await shard.lock.acquire();
    if (shard.dropped || this.closed) {
      release();
      throw this.closed ? new DbError("CLOSED", "the shard store is closed") : new DbError("SHARD_NOT_FOUND", `shard ${shard.id} was dropped`);
    }
    return release;
  }

  // ---- group-committed autocommit --------------------------------------------------------------------------

  executeAutocommit(shardId: string, statements: readonly Statement[]): Promise<StatementResult[]> {
    let shard: SqliteShard;
    try {
      shard = this.shard(shardId);
      if (statements.length === 0) throw new DbError("INVALID_ARGUMENT", "executeAutocommit needs at least one statement");
      for (const statement of statements) {
        assertUserStatement(statement.sql);
        assertSqlValues(statement.params);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return observed(this.settings.onQuery, this.counters, "autocommit", shardId, () =>
      new Promise<StatementResult[]>((resolve, reject) => {
        shard.autocommitQueue.push({ statements, resolve, reject });
        if (!shard.autocommitScheduled) {
          shard.autocommitScheduled = true;
          // setImmediate runs after this turn's I/O callbacks, so requests that arrive together batch together.
          setImmediate(() => void this.drainAutocommits(shard));
        }
      }),
    );
  }

  private async drainAutocommits(shard: SqliteShard): Promise<void> {
    let release: () => void;
    try {
      release = await this.acquireWriteLock(shard);
    } catch (error) {
      shard.autocommitScheduled = false;
      for (const request of shard.autocommitQueue.splice(0)) request.reject(error as Error);
      return;
    }
    const batch = shard.autocommitQueue.splice(0, this.settings.maxGroupCommitBatch);
    if (shard.autocommitQueue.length > 0) setImmediate(() => void this.drainAutocommits(shard));
    else shard.autocommitScheduled = false;
    try {
      this.runAutocommitBatch(shard, batch);
    } finally {
      release();
    }
  }

  private runAutocommitBatch(shard: SqliteShard, batch: AutocommitRequest[]): void {
    const writer = shard.writer;
    const outcomes: Array<{ results: StatementResult[] } | { error: Error }> = [];
    try {
      writer.run("BEGIN IMMEDIATE", `group commit on shard ${shard.id}`);
    } catch (error) {
      for (const request of batch) request.reject(error as Error);
      return;
    }
    for (const request of batch) {
      writer.run("SAVEPOINT myc_autocommit", "savepoint");
      try {
        const results = request.statements.map(
          (statement, index) => writer.execute(statement.sql, statement.params, `statement ${index + 1} on shard ${shard.id}`).result,
        );
        writer.run("RELEASE myc_autocommit", "release savepoint");
        outcomes.push({ results });
      } catch (error) {
        outcomes.push({ error: error as Error });
        if (!writer.inTransaction) {
          // SQLite rolled back the whole transaction (disk full, I/O error): nothing in this batch committed.
          for (const other of batch) other.reject(error as Error);
          return;
        }
        writer.run("ROLLBACK TO myc_autocommit", "rollback to savepoint");
        writer.run("RELEASE myc_autocommit", "release savepoint");
      }
    }
    try {
      writer.run("COMMIT", `group commit on shard ${shard.id}`);
    } catch (error) {
      if (writer.inTransaction) writer.run("ROLLBACK", "rollback group commit");
      for (const request of batch) request.reject(error as Error);
      return;
    }
    this.groupCommits.batches += 1;
    this.groupCommits.requests += batch.length;
    batch.forEach((request, index) => {
      const outcome = outcomes[index]!;
      if ("results" in outcome) request.resolve(outcome.results);
      else request.reject(outcome.error);
    });
  }

  // ---- local transactions and 2PC --------------------------------------------------------------------------

  async begin(shardId: string, txId: string): Promise<LocalTransaction> {
    const shard = this.shard(shardId);
    assertTxId(txId);
    if (shard.current?.txId === txId) {
      throw new DbError("INVALID_ARGUMENT", `transaction ${txId} is already open on shard ${shardId}`);
    }
    const release = await this.acquireWriteLock(shard);
    try {
      await retryBusy(() => shard.writer.run("BEGIN IMMEDIATE", `begin on shard ${shardId}`), this.lockDeadline(), `begin on shard ${shardId}`);
    } catch (error) {
      release();
      throw error;
    }
    const transaction = new SqliteLocalTransaction(this, shard, txId, release, this.settings.onQuery, this.counters);
    shard.current = transaction;
    return transaction;
  }

  async commitPrepared(shardId: string, txId: string): Promise<void> {
    const shard = this.shard(shardId);
    assertTxId(txId);
    await shard.current?.settled();
    await observed(this.settings.onQuery, this.counters, "commit", shardId, () => {
      const current = shard.current;
      if (current?.txId === txId) {
        if (current.state !== "prepared") {
          throw new DbError("NOT_PREPARED", `transaction ${txId} on shard ${shardId} is ${current.state}, not prepared`);
        }
        current.commitNow();
        this.log.remove(txId, shardId);
        return;
      }
      if (this.hasCommitMarker(shard, txId)) {
        this.log.remove(txId, shardId); // a lost removal from before a crash
        return;
      }
      throw new DbError("NOT_PREPARED", `transaction ${txId} is not prepared on shard ${shardId}: it was rolled back or never prepared`);
    });
  }

  async abortPrepared(shardId: string, txId: string): Promise<void> {
    assertShardId(shardId);
    assertTxId(txId);
    this.assertOpen();
    if (!this.shards.has(shardId) && !fs.existsSync(this.shardFile(shardId))) return; // nothing there: presumed abort
    const shard = this.shard(shardId);
    // An abort that arrives while the prepare is still writing the participant log waits for it, then undoes it.
    await shard.current?.settled();
    await observed(this.settings.onQuery, this.counters, "rollback", shardId, () => {
      const current = shard.current;
      if (current?.txId === txId) {
        current.rollbackNow();
        this.log.remove(txId, shardId);
        return;
      }
      if (this.hasCommitMarker(shard, txId)) {
        throw new DbError("ALREADY_COMMITTED", `transaction ${txId} already committed on shard ${shardId}`);
      }
      this.log.remove(txId, shardId);
    });
  }

  private hasCommitMarker(shard: SqliteShard, txId: string): boolean {
    return (
      shard.reader.query(
        builder.selectFrom("_myc_txn").select("tx_id").where("tx_id", "=", txId).compile(),
        `commit marker on shard ${shard.id}`,
      ).length > 0
    );
  }

  async recoverPrepared(): Promise<PreparedTransaction[]> {
    this.assertOpen();
    const prepared: PreparedTransaction[] = [];
    for (const shard of this.shards.values()) {
      const current = shard.current;
      if (current?.state === "prepared") {
        prepared.push({ shardId: shard.id, txId: current.txId, statements: [...current.statements], preparedAtMs: current.preparedAtMs });
      }
    }
    return prepared.sort((a, b) => a.preparedAtMs - b.preparedAtMs || a.txId.localeCompare(b.txId));
  }

  /**
   * Runs while the store opens, before it serves anything: every prepared transaction in the participant log
   * whose commit marker is not in its shard is re-executed into an open write transaction that holds the
   * shard's write lock, exactly as it stood when it voted yes.
   */
  async redoPreparedTransactions(): Promise<void> {
    const redone = new Set<string>();
    for (const entry of this.log.list()) {
      const file = this.shardFile(entry.shardId);
      if (!this.shards.has(entry.shardId) && !fs.existsSync(file)) {
        throw new DbError(
          "INTERNAL",
          `participant log holds prepared transaction ${entry.txId} for shard ${entry.shardId}, whose file ${file} is missing`,
        );
      }
      const shard = this.shard(entry.shardId);
      if (this.hasCommitMarker(shard, entry.txId)) {
        this.log.remove(entry.txId, entry.shardId);
        continue;
      }
      if (redone.has(entry.shardId)) {
        throw new DbError("INTERNAL", `participant log holds two unresolved prepared transactions for shard ${entry.shardId}`);
      }
      redone.add(entry.shardId);
      const release = await this.acquireWriteLock(shard);
      const transaction = new SqliteLocalTransaction(this, shard, entry.txId, release, this.settings.onQuery, this.counters);
      try {
        shard.writer.run("BEGIN IMMEDIATE", `redo on shard ${shard.id}`);
        shard.current = transaction;
        transaction.redo(entry.statements, entry.preparedAtMs);
      } catch (error) {
        if (shard.writer.inTransaction) shard.writer.run("ROLLBACK", "rollback failed redo");
        shard.current = null;
        release();
        throw new DbError(
          "INTERNAL",
          `redo of prepared transaction ${entry.txId} on shard ${entry.shardId} failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
  }

  /** Called by a transaction when it ends. */
  finished(shard: SqliteShard, transaction: SqliteLocalTransaction): void {
    if (shard.current === transaction) shard.current = null;
  }

  appendToLog(transaction: SqliteLocalTransaction): Promise<void> {
    return this.log.append({
      txId: transaction.txId,
      shardId: transaction.shardId,
      statements: [...transaction.statements],
      preparedAtMs: transaction.preparedAtMs,
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async checkReady(): Promise<void> {
    this.assertOpen();
    fs.accessSync(this.shardsDir, fs.constants.W_OK);
  }

  stats(): ShardStoreStats {
    let size = 0;
    let openTransactions = 0;
    let preparedTransactions = 0;
    let lockWaiting = 0;
    for (const shard of this.shards.values()) {
      size += shard.writer.cacheSize + shard.reader.cacheSize;
      if (shard.current?.state === "prepared") preparedTransactions += 1;
      else if (shard.current) openTransactions += 1;
      lockWaiting += shard.lock.waiting;
    }
    return {
      statementCache: { hits: this.cacheCounters.hits, misses: this.cacheCounters.misses, size },
      queryCount: this.counters.queryCount,
      queryErrorCount: this.counters.queryErrorCount,
      openShards: this.shards.size,
      openTransactions,
      preparedTransactions,
      lockWaiting,
      groupCommits: { ...this.groupCommits },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closedError = new DbError("CLOSED", "the shard store is closed");
    await this.log.close();
    for (const shard of this.shards.values()) {
      shard.lock.failWaiters(closedError);
      for (const request of shard.autocommitQueue.splice(0)) request.reject(closedError);
      shard.current?.abandon();
      // Closing a connection rolls back its open transaction; a prepared one is still in the participant log.
      shard.close();
    }
    this.shards.clear();
  }
}

function ensureInternalTables(writer: SqliteConnection): void {
  writer.run("BEGIN IMMEDIATE", "create internal tables");
  try {
    for (const query of [
      builder.schema
        .createTable("_myc_txn")
        .ifNotExists()
        .addColumn("tx_id", "text", (column) => column.primaryKey())
        .addColumn("prepared_at_ms", "integer", (column) => column.notNull())
        .compile(),
      builder.schema
        .createTable("_myc_meta")
        .ifNotExists()
        .addColumn("key", "text", (column) => column.primaryKey())
        .addColumn("value", "text", (column) => column.notNull())
        .compile(),
    ]) {
      writer.run(query.sql, "create internal tables");
    }
    writer.run("COMMIT", "create internal tables");
  } catch (error) {
    if (writer.inTransaction) writer.run("ROLLBACK", "create internal tables");
    throw error;
  }
}

class SqliteLocalTransaction implements LocalTransaction {
  state: LocalTransactionState = "open";
  readonly statements: Statement[] = [];
  preparedAtMs = 0;
  private preparing: Promise<void> | null = null;

  constructor(
    private readonly store: SqliteShardStore,
    private readonly shard: SqliteShard,
    readonly txId: string,
    private readonly release: () => void,
    private readonly onQuery: QueryObserver | undefined,
    private readonly counters: QueryCounters,
  ) {}

  get shardId(): string {
    return this.shard.id;
  }

  private assertState(wanted: LocalTransactionState, action: string): void {
    if (this.state === wanted && this.preparing === null) return;
    if (this.state === "failed") {
      throw new DbError("ABORTED", `transaction ${this.txId} on shard ${this.shardId} failed earlier; roll it back`);
    }
    throw new DbError("INTERNAL", `cannot ${action} transaction ${this.txId} on shard ${this.shardId}: it is ${this.preparing ? "preparing" : this.state}`);
  }

  async execute(sql: string, params: readonly SqlValue[] = []): Promise<StatementResult> {
    this.assertState("open", "execute in");
    assertUserStatement(sql);
    assertSqlValues(params);
    return observed(this.onQuery, this.counters, "execute", this.shardId, () => {
      try {
        const executed = this.shard.writer.execute(sql, params, `statement on shard ${this.shardId}`);
        if (!executed.readonly) this.statements.push({ sql, params: [...params] });
        return executed.result;
      } catch (error) {
        this.state = "failed";
        throw error;
      }
    });
  }

  /** Re-executes the redo of a prepared transaction after a restart (the store is not serving yet). */
  redo(statements: Statement[], preparedAtMs: number): void {
    statements.forEach((statement, index) => {
      this.shard.writer.execute(statement.sql, statement.params, `redo statement ${index + 1}`);
      this.statements.push(statement);
    });
    this.preparedAtMs = preparedAtMs;
    this.insertMarker();
    this.state = "prepared";
  }

  private insertMarker(): void {
    try {
      this.shard.writer.query(
        builder.insertInto("_myc_txn").values({ tx_id: this.txId, prepared_at_ms: this.preparedAtMs }).compile(),
        `commit marker on shard ${this.shardId}`,
      );
    } catch (error) {
      if (error instanceof DbError && error.code === "CONSTRAINT") {
        throw new DbError("INVALID_ARGUMENT", `transaction id ${this.txId} was already used on shard ${this.shardId}`, { cause: error });
      }
      throw error;
    }
  }

  /** Resolves when no prepare is in flight. */
  async settled(): Promise<void> {
    await this.preparing;
  }

  async prepare(): Promise<void> {
    this.assertState("open", "prepare");
    let finished!: () => void;
    this.preparing = new Promise<void>((resolve) => (finished = resolve));
    try {
      await observed(this.onQuery, this.counters, "prepare", this.shardId, async () => {
        try {
          this.preparedAtMs = Date.now();
          // The marker commits with the transaction, so "marker present" later means "this transaction committed".
          this.insertMarker();
          await this.store.appendToLog(this);
          this.state = "prepared";
        } catch (error) {
          this.rollbackNow();
          throw error;
        }
      });
    } finally {
      this.preparing = null;
      finished();
    }
  }

  async commit(): Promise<void> {
    if (this.state === "committed") return;
    if (this.state === "prepared") return this.store.commitPrepared(this.shardId, this.txId);
    this.assertState("open", "commit");
    await observed(this.onQuery, this.counters, "commit", this.shardId, () => this.commitNow());
  }

  async rollback(): Promise<void> {
    if (this.state === "prepared") return this.store.abortPrepared(this.shardId, this.txId);
    if (this.state === "committed" || this.state === "rolled_back") return;
    if (this.preparing) throw new DbError("INTERNAL", `transaction ${this.txId} is preparing; wait for prepare() first`);
    await observed(this.onQuery, this.counters, "rollback", this.shardId, () => this.rollbackNow());
  }

  /** COMMIT of the shard's write transaction; the caller checked the state. */
  commitNow(): void {
    try {
      this.shard.writer.run("COMMIT", `commit on shard ${this.shardId}`);
    } catch (error) {
      if (this.state === "prepared" && this.shard.writer.inTransaction) throw error; // still prepared; retry later
      if (this.shard.writer.inTransaction) this.shard.writer.run("ROLLBACK", "rollback after failed commit");
      if (this.state === "prepared") {
        // The commit failed and SQLite rolled back; the participant log still holds the redo, so put the
        // transaction back exactly as it was prepared (the write lock never left it).
        this.shard.writer.run("BEGIN IMMEDIATE", `redo on shard ${this.shardId}`);
        this.redo(this.statements.splice(0), this.preparedAtMs);
        throw error;
      }
      this.end("rolled_back");
      throw error;
    }
    this.end("committed");
  }

  rollbackNow(): void {
    try {
      if (this.shard.writer.inTransaction) this.shard.writer.run("ROLLBACK", `rollback on shard ${this.shardId}`);
    } finally {
      this.end("rolled_back");
    }
  }

  /** The store is closing: the connection closes under this transaction. */
  abandon(): void {
    if (this.state === "open" || this.state === "failed") this.state = "rolled_back";
    this.release();
  }

  private end(state: "committed" | "rolled_back"): void {
    this.state = state;
    this.store.finished(this.shard, this);
    this.release();
  }
}
