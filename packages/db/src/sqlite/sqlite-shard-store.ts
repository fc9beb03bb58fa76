import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { DbError } from "../db-error";
import { assertShardId, assertTxId } from "../identifiers";
import { AsyncLock } from "../internal/async-lock";
import { type ShardTables, sqliteBuilder } from "../internal/kysely";
import type { CacheCounters } from "../internal/lru-cache";
import { observed, type QueryCounters } from "../internal/observe";
import { assertUserStatement } from "../internal/user-statement";
import { ChangeNotifier } from "../replication/change-notifier";
import { addChecksum, changesDelta, checksumToHex } from "../replication/checksum";
import { encodeChanges } from "../replication/codec";
import { collapseEvents } from "../replication/collapse";
import type {
  ActivationResult,
  AdoptedTransaction,
  AdoptOptions,
  ChangeEntry,
  ChecksumVerification,
  ReplicaState,
  SnapshotChunk,
  WriteOptions,
} from "../replication/types";
import {
  assertEntries,
  assertEpochValue,
  assertLsn,
  assertReplicableDdl,
  assertWriteOptions,
  chunkReader,
  defaultReadChangesLimit,
  maxReadChangesBytes,
  maxReadChangesLimit,
  staleEpoch,
} from "../replication/validate";
import { assertSqlValues, type SqlValue, type Statement, type StatementResult } from "../sql-value";
import type {
  LocalTransaction,
  LocalTransactionState,
  PreparedTransaction,
  QueryObserver,
  ReadOptions,
  ShardStore,
  ShardStoreStats,
} from "../shard-store";
import { visibleShardIds } from "../shard-store";
import { ParticipantLog } from "./participant-log";
import { CaptureBuffer, dropCapture, installCapture, readUserTables, registerCaptureFunction } from "./sqlite-capture";
import { ChangeLogStatements, ReplicaPosition, replicationTableQueries } from "./sqlite-change-log";
import { retryBusy, SqliteConnection, withAttached } from "./sqlite-connection";
import { toDbError } from "./sqlite-errors";
import {
  applyEntries,
  clearShard,
  insertSnapshotRows,
  runSchemaChange,
  snapshotChunks,
  tableMap,
  verifyOnOwnConnection,
} from "./sqlite-replication";
import { quoteSqliteIdentifier } from "./sqlite-capture";

export interface SqliteShardStoreSettings {
  dataDir: string;
  nodeDatabasePath: string;
  synchronous: "FULL" | "NORMAL";
  statementCacheSize: number;
  lockWaitTimeoutMs: number;
  maxLockWaiters: number;
  maxGroupCommitBatch: number;
  onQuery: QueryObserver | undefined;
  nodeId: string | undefined;
  changeCapture: boolean;
  maxChangeWaiters: number;
}

const builder = sqliteBuilder<ShardTables>();
const inactiveCapture = Object.assign(new CaptureBuffer(), { active: false });

interface AutocommitRequest {
  statements: readonly Statement[];
  epoch: number | undefined;
  resolve: (results: StatementResult[]) => void;
  reject: (error: Error) => void;
}

/**
 * One shard file: a writer connection (serialised by `lock`) and a reader connection (WAL snapshots), the
 * capture buffer the writer's triggers fill, and the committed replica position (head lsn, checksum, version
 * vector) mirrored in memory so the commit path never reads it back.
 */
class SqliteShard {
  readonly lock: AsyncLock;
  /** The transaction holding the write lock, if it is a LocalTransaction (open or prepared). */
  current: SqliteLocalTransaction | null = null;
  autocommitQueue: AutocommitRequest[] = [];
  autocommitScheduled = false;
  dropped = false;
  readonly capture = new CaptureBuffer();
  readonly writerLog: ChangeLogStatements;
  readonly readerLog: ChangeLogStatements;
  /** Committed position; a transaction works on a copy and installs it after COMMIT. */
  position!: ReplicaPosition;
  /** The epoch set by setShardEpoch (node.db); entries carry max(this, position.epoch). */
  epochFloor = 0;

  constructor(
    readonly id: string,
    readonly file: string,
    readonly writer: SqliteConnection,
    readonly reader: SqliteConnection,
    settings: SqliteShardStoreSettings,
  ) {
    this.lock = new AsyncLock(`shard ${id}`, settings.maxLockWaiters, settings.lockWaitTimeoutMs);
    this.writerLog = new ChangeLogStatements(writer.db);
    this.readerLog = new ChangeLogStatements(reader.db);
  }

  get epoch(): number {
    return Math.max(this.epochFloor, this.position.epoch);
  }

  close(): void {
    this.writerLog.clear();
    this.readerLog.clear();
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
  const nodeId = settings.nodeId ?? log.nodeId(() => `node-${randomUUID()}`);
  const store = new SqliteShardStore(settings, shardsDir, log, nodeId);
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
  private readonly changeLog = { entriesWritten: 0, entriesApplied: 0, entriesStaged: 0 };
  private readonly notifier: ChangeNotifier;
  private closed = false;

  constructor(
    private readonly settings: SqliteShardStoreSettings,
    private readonly shardsDir: string,
    readonly log: ParticipantLog,
    readonly nodeId: string,
  ) {
    this.notifier = new ChangeNotifier(settings.maxChangeWaiters);
  }

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
    let shard: SqliteShard;
    try {
      // REPLACE deletes the rows it displaces; SQLite fires their delete triggers only with recursive_triggers.
      writer.db.pragma("recursive_triggers = ON");
      reader = connection(true, false);
      shard = new SqliteShard(shardId, file, writer, reader, this.settings);
      registerCaptureFunction(writer.db, shard.capture);
      // The reader never writes (query_only), but preparing a write there compiles the triggers, which name it.
      registerCaptureFunction(reader.db, inactiveCapture);
      const tables = ensureInternalTables(writer, this.settings.changeCapture);
      shard.capture.tables = tableMap(tables);
      shard.position = shard.writerLog.loadPosition();
      shard.epochFloor = this.log.shardEpoch(shardId);
    } catch (error) {
      writer.close();
      throw error;
    }
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
      this.log.forgetShard(shardId);
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

  async read(shardId: string, sql: string, params: readonly SqlValue[] = [], options?: ReadOptions): Promise<StatementResult> {
    const shard = this.shard(shardId);
    assertUserStatement(sql);
    assertSqlValues(params);
    const visible = visibleShardIds(shardId, options);
    // Each visible shard must be here; its file is attached for this one statement.
    const files = visible.map((id) => this.shard(id).file);
    const run = () => shard.reader.execute(sql, params, `read on shard ${shardId}`, true).result;
    return observed(this.settings.onQuery, this.counters, "read", shardId, () =>
      retryBusy(() => (files.length > 0 ? withAttached(shard.reader, files, run) : run()), Date.now() + this.settings.lockWaitTimeoutMs, `read on shard ${shardId}`),
    );
  }

  async applySchema(shardId: string, ddl: readonly string[], options?: WriteOptions): Promise<void> {
    const shard = this.shard(shardId);
    for (const statement of ddl) assertUserStatement(statement);
    assertWriteOptions(options);
    const capture = this.settings.changeCapture;
    if (capture) assertReplicableDdl(ddl);
    await observed(this.settings.onQuery, this.counters, "ddl", shardId, async () => {
      let working: ReplicaPosition | null = null;
      let tables: ReturnType<typeof tableMap> | null = null;
      await this.withWriteTransaction(shard, () => {
        if (options?.epoch !== undefined && options.epoch < shard.epoch) throw staleEpoch(shardId, options.epoch, shard.epoch);
        shard.capture.active = false;
        try {
          const result = runSchemaChange(shard.writer.db, ddl, capture, (n) => `schema statement ${n} on shard ${shardId}`);
          tables = tableMap(result.tables);
          if (capture) {
            shard.writerLog.appendSchemaLog(ddl);
            working = shard.position.copy();
            this.recordEntry(shard, working, null, { always: true, ddl: [...ddl], delta: result.delta });
            shard.writerLog.savePosition(working);
          }
        } finally {
          shard.capture.active = true;
          shard.capture.reset();
        }
      });
      if (tables) shard.capture.tables = tables;
      if (working) this.installPosition(shard, working, 1);
    });
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

  executeAutocommit(shardId: string, statements: readonly Statement[], options?: WriteOptions): Promise<StatementResult[]> {
    let shard: SqliteShard;
    try {
      shard = this.shard(shardId);
      if (statements.length === 0) throw new DbError("INVALID_ARGUMENT", "executeAutocommit needs at least one statement");
      for (const statement of statements) {
        assertUserStatement(statement.sql);
        assertSqlValues(statement.params);
      }
      assertWriteOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return observed(this.settings.onQuery, this.counters, "autocommit", shardId, () =>
      new Promise<StatementResult[]>((resolve, reject) => {
        shard.autocommitQueue.push({ statements, epoch: options?.epoch, resolve, reject });
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

  /**
   * One group commit: every request runs in its own SAVEPOINT and, when it changed captured rows, writes its own
   * change-log entry inside that savepoint — so a request that fails takes its entry with it, and each request
   * keeps its own lsn and originSeq although one COMMIT (one fsync) covers them all.
   */
  private runAutocommitBatch(shard: SqliteShard, batch: AutocommitRequest[]): void {
    const writer = shard.writer;
    const outcomes: Array<{ results: StatementResult[] } | { error: Error }> = [];
    try {
      writer.run("BEGIN IMMEDIATE", `group commit on shard ${shard.id}`);
    } catch (error) {
      for (const request of batch) request.reject(error as Error);
      return;
    }
    const working = shard.position.copy();
    let entries = 0;
    for (const request of batch) {
      if (request.epoch !== undefined && request.epoch < shard.epoch) {
        outcomes.push({ error: staleEpoch(shard.id, request.epoch, shard.epoch) });
        continue;
      }
      const saved = { headLsn: working.headLsn, checksum: working.checksum, seq: working.versionVector.get(this.nodeId), epoch: working.epoch };
      shard.capture.reset();
      writer.run("SAVEPOINT myc_autocommit", "savepoint");
      try {
        const results = request.statements.map(
          (statement, index) => writer.execute(statement.sql, statement.params, `statement ${index + 1} on shard ${shard.id}`).result,
        );
        if (this.recordEntry(shard, working, null, { always: false })) entries += 1;
        writer.run("RELEASE myc_autocommit", "release savepoint");
        outcomes.push({ results });
      } catch (error) {
        shard.capture.reset();
        working.headLsn = saved.headLsn;
        working.checksum = saved.checksum;
        working.epoch = saved.epoch;
        if (saved.seq === undefined) working.versionVector.delete(this.nodeId);
        else working.versionVector.set(this.nodeId, saved.seq);
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
      if (entries > 0) shard.writerLog.savePosition(working);
      writer.run("COMMIT", `group commit on shard ${shard.id}`);
    } catch (error) {
      if (writer.inTransaction) writer.run("ROLLBACK", "rollback group commit");
      for (const request of batch) request.reject(error as Error);
      return;
    }
    if (entries > 0) this.installPosition(shard, working, entries);
    this.groupCommits.batches += 1;
    this.groupCommits.requests += batch.length;
    batch.forEach((request, index) => {
      const outcome = outcomes[index]!;
      if ("results" in outcome) request.resolve(outcome.results);
      else request.reject(outcome.error);
    });
  }

  // ---- change log: writing entries ---------------------------------------------------------------------------

  /**
   * Turns the capture buffer into the next change-log entry and writes it on the writer connection (inside the
   * caller's transaction), advancing `working`. No entry when nothing captured changed, unless `always` (a
   * prepared transaction's commit, a schema change). The caller saves `working` and installs it after COMMIT.
   */
  recordEntry(
    shard: SqliteShard,
    working: ReplicaPosition,
    txId: string | null,
    options: { always: boolean; ddl?: string[]; delta?: bigint },
  ): ChangeEntry | null {
    const changes = options.ddl ? [] : collapseEvents(shard.capture.events, shard.capture.keyColumnsOf);
    shard.capture.reset();
    if (changes.length === 0 && !options.always) return null;
    working.checksum = addChecksum(working.checksum, options.delta ?? changesDelta(changes));
    working.headLsn += 1;
    working.epoch = Math.max(working.epoch, shard.epochFloor);
    const originSeq = (working.versionVector.get(this.nodeId) ?? 0) + 1;
    working.versionVector.set(this.nodeId, originSeq);
    working.dirtyOrigins.add(this.nodeId);
    const entry: ChangeEntry = {
      lsn: working.headLsn,
      txId,
      origin: this.nodeId,
      originSeq,
      epoch: working.epoch,
      changes,
      committedAtMs: Date.now(),
      checksum: checksumToHex(working.checksum),
    };
    if (options.ddl) entry.ddl = options.ddl;
    shard.writerLog.insertEntry(entry, encodeChanges(changes));
    return entry;
  }

  /** After COMMIT: the new position becomes the shard's, and waiting readers of the log wake up. */
  installPosition(shard: SqliteShard, working: ReplicaPosition, entriesWritten: number): void {
    const advanced = working.headLsn > shard.position.headLsn;
    shard.position = working;
    this.changeLog.entriesWritten += entriesWritten;
    if (advanced) this.notifier.notify(shard.id, working.headLsn);
  }

  // ---- local transactions and 2PC --------------------------------------------------------------------------

  async begin(shardId: string, txId: string, options?: WriteOptions): Promise<LocalTransaction> {
    const shard = this.shard(shardId);
    assertTxId(txId);
    assertWriteOptions(options);
    if (shard.current?.txId === txId) {
      throw new DbError("INVALID_ARGUMENT", `transaction ${txId} is already open on shard ${shardId}`);
    }
    const release = await this.acquireWriteLock(shard);
    try {
      if (options?.epoch !== undefined && options.epoch < shard.epoch) throw staleEpoch(shardId, options.epoch, shard.epoch);
      await retryBusy(() => shard.writer.run("BEGIN IMMEDIATE", `begin on shard ${shardId}`), this.lockDeadline(), `begin on shard ${shardId}`);
    } catch (error) {
      release();
      throw error;
    }
    shard.capture.reset();
    const transaction = new SqliteLocalTransaction(this, shard, txId, options?.epoch, release, this.settings.onQuery, this.counters);
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
      const transaction = new SqliteLocalTransaction(this, shard, entry.txId, undefined, release, this.settings.onQuery, this.counters);
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

  // ---- replication -----------------------------------------------------------------------------------------

  async setShardEpoch(shardId: string, epoch: number): Promise<void> {
    const shard = this.shard(shardId);
    assertEpochValue(epoch);
    if (epoch < shard.epoch) throw staleEpoch(shardId, epoch, shard.epoch);
    if (epoch === shard.epoch) return;
    // node.db, not the shard file: the shard's write lock may be held by a prepared transaction for a long time,
    // and fencing must not wait for it. Synchronous (FULL) write, then the in-memory floor every check reads.
    this.log.setShardEpoch(shardId, epoch);
    shard.epochFloor = epoch;
  }

  async headLsn(shardId: string): Promise<number> {
    return this.shard(shardId).position.headLsn;
  }

  async readChanges(shardId: string, afterLsn: number, limit = defaultReadChangesLimit): Promise<ChangeEntry[]> {
    const shard = this.shard(shardId);
    assertLsn(afterLsn, "afterLsn");
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxReadChangesLimit) {
      throw new DbError("INVALID_ARGUMENT", `limit must be an integer from 1 to ${maxReadChangesLimit}, got ${limit}`);
    }
    if (afterLsn < shard.position.truncatedLsn) {
      throw new DbError(
        "REPLICATION_GAP",
        `shard ${shardId}: the change log was truncated through lsn ${shard.position.truncatedLsn}; entries after ${afterLsn} are gone (resync from a snapshot)`,
      );
    }
    if (afterLsn >= shard.position.headLsn) return [];
    try {
      return shard.readerLog.readEntries(afterLsn, limit, maxReadChangesBytes);
    } catch (error) {
      throw toDbError(error, `read changes of shard ${shardId}`);
    }
  }

  async waitForChanges(shardId: string, afterLsn: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const shard = this.shard(shardId);
    assertLsn(afterLsn, "afterLsn");
    return this.notifier.wait(shardId, afterLsn, timeoutMs, signal, async () => shard.position.headLsn);
  }

  async truncateChanges(shardId: string, throughLsn: number): Promise<number> {
    const shard = this.shard(shardId);
    assertLsn(throughLsn, "throughLsn");
    const through = Math.min(throughLsn, shard.position.headLsn);
    if (through <= shard.position.truncatedLsn) return 0;
    let working: ReplicaPosition | null = null;
    const removed = await this.withWriteTransaction(shard, () => {
      const result = shard.writerLog.statement("DELETE FROM _myc_changes WHERE lsn <= ?").run(through);
      working = shard.position.copy();
      working.truncatedLsn = Math.max(working.truncatedLsn, through);
      shard.writerLog.savePosition(working);
      return result.changes;
    });
    if (working) shard.position = working;
    return removed;
  }

  async applyChanges(shardId: string, entries: readonly ChangeEntry[]): Promise<{ appliedLsn: number }> {
    const shard = this.shard(shardId);
    assertEntries(entries);
    return observed(this.settings.onQuery, this.counters, "apply", shardId, async () => {
      const release = await this.acquireWriteLock(shard);
      const applied: string[] = [];
      try {
        const head = shard.position.headLsn;
        this.assertSameEntries(shard, entries.filter((entry) => entry.lsn <= head));
        const fresh = entries.filter((entry) => entry.lsn > head);
        if (fresh.length === 0) return { appliedLsn: head };
        if (fresh[0]!.lsn !== head + 1) {
          throw new DbError("REPLICATION_GAP", `shard ${shardId} has applied through lsn ${head}; the next entry given is ${fresh[0]!.lsn}`);
        }
        const writer = shard.writer;
        // Foreign keys off for the apply (set outside the transaction, where SQLite honours it): the origin
        // enforced them, and replaying its net changes must never cascade.
        writer.db.pragma("foreign_keys = OFF");
        shard.capture.active = false;
        try {
          writer.run("BEGIN IMMEDIATE", `apply on shard ${shardId}`);
          const working = shard.position.copy();
          const { tables } = applyEntries(writer.db, shard.writerLog, shard.capture, working, fresh, this.settings.changeCapture, shardId);
          shard.writerLog.savePosition(working);
          writer.run("COMMIT", `apply on shard ${shardId}`);
          shard.capture.tables = tables;
          const advanced = working.headLsn > shard.position.headLsn;
          shard.position = working;
          this.changeLog.entriesApplied += fresh.length;
          if (advanced) this.notifier.notify(shardId, working.headLsn);
          for (const entry of fresh) if (entry.txId !== null) applied.push(entry.txId);
          return { appliedLsn: working.headLsn };
        } catch (error) {
          if (writer.inTransaction) writer.run("ROLLBACK", `rollback apply on shard ${shardId}`);
          throw toDbError(error, `apply on shard ${shardId}`);
        } finally {
          shard.capture.active = true;
          shard.capture.reset();
          writer.db.pragma("foreign_keys = ON");
        }
      } finally {
        release();
        // Adopted prepared transactions whose outcome arrived are done with (a lost removal is harmless:
        // activation skips a transaction whose commit marker is here).
        if (applied.length > 0 && !this.closed) this.log.removeAdopted(shardId, applied);
      }
    });
  }

  /** Entries at or below the head must be the ones this log holds (when it still holds them). */
  private assertSameEntries(shard: SqliteShard, entries: readonly ChangeEntry[]): void {
    const held = entries.filter((entry) => entry.lsn > shard.position.truncatedLsn);
    if (held.length === 0) return;
    const identities = shard.writerLog.identities(held[0]!.lsn, held[held.length - 1]!.lsn);
    for (const entry of held) {
      const mine = identities.get(entry.lsn);
      if (mine && (mine.origin !== entry.origin || mine.originSeq !== entry.originSeq)) {
        throw new DbError(
          "REPLICA_DIVERGED",
          `shard ${shard.id}: lsn ${entry.lsn} here is ${mine.origin}#${mine.originSeq}, the entry given is ${entry.origin}#${entry.originSeq}`,
        );
      }
    }
  }

  async replicaState(shardId: string): Promise<ReplicaState> {
    const shard = this.shard(shardId);
    const position = shard.position;
    return {
      appliedLsn: position.headLsn,
      truncatedLsn: position.truncatedLsn,
      epoch: shard.epoch,
      versionVector: position.vectorRecord(),
      checksum: checksumToHex(position.checksum),
    };
  }

  async checksumAt(shardId: string, lsn: number): Promise<string | null> {
    const shard = this.shard(shardId);
    assertLsn(lsn, "lsn");
    const position = shard.position;
    if (lsn === position.headLsn) return checksumToHex(position.checksum);
    if (lsn > position.headLsn) return null;
    if (lsn === 0) return position.truncatedLsn === 0 ? checksumToHex(0n) : null;
    return shard.readerLog.checksumAt(lsn);
  }

  async verifyChecksum(shardId: string): Promise<ChecksumVerification> {
    const shard = this.shard(shardId);
    const result = await verifyOnOwnConnection(shard.file);
    const incremental = checksumToHex(result.incremental);
    const scanned = checksumToHex(result.scanned);
    return { lsn: result.lsn, incremental, scanned, ok: incremental === scanned };
  }

  snapshot(shardId: string): AsyncIterable<SnapshotChunk> {
    const shard = this.shard(shardId);
    return snapshotChunks(shard.file, shardId, shard.epochFloor);
  }

  async restoreSnapshot(shardId: string, chunks: AsyncIterable<SnapshotChunk> | Iterable<SnapshotChunk>): Promise<{ lsn: number }> {
    assertShardId(shardId);
    const next = chunkReader(chunks);
    const first = await next();
    if (first?.kind !== "begin" || first.formatVersion !== 1) {
      throw new DbError("INVALID_ARGUMENT", "a snapshot starts with a begin chunk of format version 1");
    }
    await this.ensureShard(shardId);
    const shard = this.shard(shardId);
    if (shard.current?.state === "prepared") {
      throw new DbError("BUSY", `shard ${shardId} has prepared transaction ${shard.current.txId}; resolve it before restoring`);
    }
    return observed(this.settings.onQuery, this.counters, "restore", shardId, async () => {
      const release = await this.acquireWriteLock(shard);
      const writer = shard.writer;
      let working: ReplicaPosition | null = null;
      let tables: ReturnType<typeof tableMap> | null = null;
      writer.db.pragma("foreign_keys = OFF");
      shard.capture.active = false;
      try {
        writer.run("BEGIN IMMEDIATE", `restore on shard ${shardId}`);
        clearShard(writer.db);
        const result = runSchemaChange(writer.db, first.ddl, this.settings.changeCapture, (n) => `restore schema statement ${n} on shard ${shardId}`);
        tables = tableMap(result.tables);
        // The schema statements may write rows too (a migration's bookkeeping); the snapshot's rows are
        // the whole truth, so start every table empty.
        for (const table of result.tables) writer.db.prepare(`DELETE FROM ${quoteSqliteIdentifier(table.name)}`).run();
        shard.writerLog.appendSchemaLog(first.ddl);
        let sum = 0n;
        let rows = 0;
        let markers = 0;
        for (;;) {
          const chunk = await next();
          if (chunk === undefined) throw new DbError("INVALID_ARGUMENT", "the snapshot ended without its end chunk");
          if (chunk.kind === "rows") {
            sum += insertSnapshotRows(shard.writerLog, tables, chunk);
            rows += chunk.rows.length;
          } else if (chunk.kind === "markers") {
            for (const marker of chunk.markers) {
              shard.writerLog.statement("INSERT OR REPLACE INTO _myc_txn (tx_id, prepared_at_ms) VALUES (?, ?)").run(marker.txId, marker.preparedAtMs);
            }
            markers += chunk.markers.length;
          } else if (chunk.kind === "end") {
            if (chunk.rowCount !== rows || chunk.markerCount !== markers) {
              throw new DbError("INVALID_ARGUMENT", `the snapshot promised ${chunk.rowCount} rows and ${chunk.markerCount} markers, it carried ${rows} and ${markers}`);
            }
            break;
          } else {
            throw new DbError("INVALID_ARGUMENT", `unexpected ${chunk.kind} chunk inside a snapshot`);
          }
        }
        const reached = checksumToHex(sum % (1n << 128n));
        if (this.settings.changeCapture && reached !== first.checksum) {
          throw new DbError("REPLICA_DIVERGED", `snapshot of shard ${shardId}: its rows add up to checksum ${reached}, it claims ${first.checksum}`);
        }
        working = new ReplicaPosition(first.lsn, first.lsn, first.epoch, sum % (1n << 128n), new Map(Object.entries(first.versionVector)));
        for (const origin of working.versionVector.keys()) working.dirtyOrigins.add(origin);
        shard.writerLog.savePosition(working);
        writer.run("COMMIT", `restore on shard ${shardId}`);
      } catch (error) {
        if (writer.inTransaction) writer.run("ROLLBACK", `rollback restore on shard ${shardId}`);
        throw toDbError(error, `restore on shard ${shardId}`);
      } finally {
        shard.capture.active = true;
        shard.capture.reset();
        writer.db.pragma("foreign_keys = ON");
        release();
      }
      shard.capture.tables = tables!;
      shard.position = working!;
      this.notifier.notify(shardId, working!.headLsn);
      return { lsn: working!.headLsn };
    });
  }

  async adoptPrepared(shardId: string, txId: string, statements: readonly Statement[], options?: AdoptOptions): Promise<void> {
    this.shard(shardId);
    assertTxId(txId);
    if (!Array.isArray(statements)) throw new DbError("INVALID_ARGUMENT", "statements must be an array");
    for (const statement of statements) {
      assertUserStatement(statement.sql);
      assertSqlValues(statement.params);
    }
    const minAppliedLsn = options?.minAppliedLsn ?? 0;
    assertLsn(minAppliedLsn, "minAppliedLsn");
    this.log.adopt({ txId, shardId, statements: statements.map((statement) => ({ sql: statement.sql, params: [...statement.params] })), adoptedAtMs: Date.now(), minAppliedLsn });
  }

  async discardAdopted(shardId: string, txId: string): Promise<void> {
    assertShardId(shardId);
    assertTxId(txId);
    this.assertOpen();
    this.log.removeAdopted(shardId, [txId]);
  }

  async listAdopted(shardId: string): Promise<AdoptedTransaction[]> {
    assertShardId(shardId);
    this.assertOpen();
    return this.log.listAdopted(shardId);
  }

  /**
   * Re-executes adopted transactions through the ordinary begin → execute → prepare path (the prepare appends
   * the redo to this node's participant log and holds the write transaction, exactly like crash recovery).
   * SQLite holds one prepared transaction per shard, so at most one is activated per call.
   */
  async activatePrepared(shardId: string): Promise<ActivationResult> {
    const shard = this.shard(shardId);
    const result: ActivationResult = { activated: [], skipped: [], waiting: [] };
    for (const adopted of this.log.listAdopted(shardId)) {
      if (shard.current?.txId === adopted.txId || this.hasCommitMarker(shard, adopted.txId) || shard.readerLog.hasEntryFor(adopted.txId)) {
        // Held already (recovered from the participant log after a crash), or its effects arrived by the log.
        this.log.removeAdopted(shardId, [adopted.txId]);
        result.skipped.push(adopted.txId);
        continue;
      }
      if (result.activated.length > 0 || shard.current?.state === "prepared") {
        result.waiting.push(adopted.txId);
        continue;
      }
      if (shard.position.headLsn < adopted.minAppliedLsn) {
        throw new DbError(
          "REPLICATION_GAP",
          `shard ${shardId}: adopted transaction ${adopted.txId} ran after lsn ${adopted.minAppliedLsn}, this replica has applied only ${shard.position.headLsn}`,
        );
      }
      const transaction = await this.begin(shardId, adopted.txId);
      try {
        for (const statement of adopted.statements) await transaction.execute(statement.sql, statement.params);
        await transaction.prepare();
      } catch (error) {
        await transaction.rollback().catch(() => undefined);
        throw new DbError("INTERNAL", `activation of adopted transaction ${adopted.txId} on shard ${shardId} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      this.log.removeAdopted(shardId, [adopted.txId]);
      result.activated.push(adopted.txId);
    }
    return result;
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
      changeLog: { ...this.changeLog, waiters: this.notifier.size },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closedError = new DbError("CLOSED", "the shard store is closed");
    this.notifier.clear();
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

/**
 * Creates the internal tables when missing and (re)installs change capture on every user table, in one
 * transaction, so triggers and the capture metadata in memory always agree. Returns the user tables.
 */
function ensureInternalTables(writer: SqliteConnection, capture: boolean) {
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
      ...replicationTableQueries(),
    ]) {
      try {
        writer.db.prepare(query.sql).run(...((query as { parameters?: unknown[] }).parameters ?? []));
      } catch (error) {
        throw toDbError(error, "create internal tables");
      }
    }
    // Tables without a primary key (created before capture existed) stay uncaptured; applySchema refuses new ones.
    const tables = readUserTables(writer.db).filter((table) => table.keyColumns.length > 0);
    dropCapture(writer.db);
    if (capture) installCapture(writer.db, tables);
    writer.run("COMMIT", "create internal tables");
    return tables;
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
  /** The change-log entry and position written into this transaction, waiting for COMMIT. */
  private pendingPosition: ReplicaPosition | null = null;
  private pendingEntries = 0;

  constructor(
    private readonly store: SqliteShardStore,
    private readonly shard: SqliteShard,
    readonly txId: string,
    readonly epoch: number | undefined,
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
    // The redo's writes fire the capture triggers again: the entry is written from them at commit.
    this.shard.capture.reset();
    this.pendingPosition = null;
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

  private assertEpoch(): void {
    if (this.epoch !== undefined && this.epoch < this.shard.epoch) throw staleEpoch(this.shardId, this.epoch, this.shard.epoch);
  }

  async prepare(): Promise<void> {
    this.assertState("open", "prepare");
    let finished!: () => void;
    this.preparing = new Promise<void>((resolve) => (finished = resolve));
    try {
      await observed(this.onQuery, this.counters, "prepare", this.shardId, async () => {
        try {
          this.assertEpoch();
          this.preparedAtMs = Date.now();
          // The marker commits with the transaction, so "marker present" later means "this transaction committed".
          this.insertMarker();
          await this.store.appendToLog(this);
          // setShardEpoch may have run while the log was being written: a prepare is reported only if it became
          // durable before a newer epoch was recorded.
          if (this.epoch !== undefined && this.epoch < this.shard.epoch) {
            this.store.log.remove(this.txId, this.shardId);
            throw staleEpoch(this.shardId, this.epoch, this.shard.epoch);
          }
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
    await observed(this.onQuery, this.counters, "commit", this.shardId, () => {
      try {
        this.assertEpoch();
      } catch (error) {
        this.rollbackNow();
        throw error;
      }
      this.commitNow();
    });
  }

  async rollback(): Promise<void> {
    if (this.state === "prepared") return this.store.abortPrepared(this.shardId, this.txId);
    if (this.state === "committed" || this.state === "rolled_back") return;
    if (this.preparing) throw new DbError("INTERNAL", `transaction ${this.txId} is preparing; wait for prepare() first`);
    await observed(this.onQuery, this.counters, "rollback", this.shardId, () => this.rollbackNow());
  }

  /**
   * Writes the transaction's change-log entry (a prepared transaction always gets one, so replicas learn its
   * txId), then COMMITs the shard's write transaction; the caller checked the state.
   */
  commitNow(): void {
    if (this.pendingPosition === null) {
      try {
        const working = this.shard.position.copy();
        const entry = this.store.recordEntry(this.shard, working, this.txId, { always: this.state === "prepared" });
        if (entry) this.shard.writerLog.savePosition(working);
        this.pendingPosition = working;
        this.pendingEntries = entry ? 1 : 0;
      } catch (error) {
        if (this.shard.writer.inTransaction) this.shard.writer.run("ROLLBACK", "rollback after failed change-log write");
        if (this.state === "prepared") {
          this.shard.writer.run("BEGIN IMMEDIATE", `redo on shard ${this.shardId}`);
          this.redo(this.statements.splice(0), this.preparedAtMs);
          throw error;
        }
        this.end("rolled_back");
        throw error;
      }
    }
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
    const position = this.pendingPosition;
    this.pendingPosition = null;
    if (this.pendingEntries > 0) this.store.installPosition(this.shard, position, this.pendingEntries);
    this.end("committed");
  }

  rollbackNow(): void {
    this.shard.capture.reset();
    this.pendingPosition = null;
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
