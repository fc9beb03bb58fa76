import type { CompiledQuery } from "kysely";
import { Pool, type PoolClient, type PoolConfig, type QueryResult } from "pg";
import { DbError } from "../db-error";
import {
  assertShardId,
  assertTxId,
  parsePreparedTransactionId,
  postgresSchemaName,
  preparedTransactionId,
} from "../identifiers";
import { type PostgresNodeTables, postgresBuilder, type ShardTables } from "../internal/kysely";
import { type CacheCounters, LruCache } from "../internal/lru-cache";
import { observed, type QueryCounters } from "../internal/observe";
import { assertUserStatement } from "../internal/user-statement";
import { assertSqlValues, type SqlValue, type Statement, type StatementResult } from "../sql-value";
import type {
  LocalTransaction,
  LocalTransactionState,
  PostgresSslMode,
  PreparedTransaction,
  QueryObserver,
  ShardStore,
  ShardStoreStats,
} from "../shard-store";
import { toPostgresSql } from "../to-postgres-sql";
import { sqlStateOf, toDbError } from "./postgres-errors";
import { postgresTypes, toPostgresParam } from "./postgres-types";

export interface PostgresShardStoreSettings {
  url: string;
  maxConnections: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  sslMode: PostgresSslMode;
  sslRootCert: string | undefined;
  statementCacheSize: number;
  lockWaitTimeoutMs: number;
  onQuery: QueryObserver | undefined;
}

const nodeSchema = "mycelium_node";
const shardBuilder = postgresBuilder<ShardTables>();
const nodeBuilder = postgresBuilder<PostgresNodeTables>().withSchema(nodeSchema);

/** Per-connection state: its named prepared statements (LRU) and its session search_path. */
interface ClientState {
  statements: LruCache<string, string>;
  nextStatement: number;
  sessionSchema: string | null;
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export async function openPostgresShardStore(settings: PostgresShardStoreSettings): Promise<ShardStore> {
  const url = new URL(settings.url);
  const urlSslMode = url.searchParams.get("sslmode");
  if (urlSslMode !== null && urlSslMode !== settings.sslMode) {
    throw new DbError("CONFIG", `the database URL says sslmode=${urlSslMode} but the SSL mode option is ${settings.sslMode}; give one`);
  }
  url.searchParams.delete("sslmode"); // pg would let the URL's sslmode override the ssl option below

  const base: PoolConfig = {
    connectionString: url.toString(),
    max: settings.maxConnections,
    idleTimeoutMillis: settings.idleTimeoutMs,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    types: postgresTypes,
    application_name: "mycelium",
    // Every session is read-only unless a transaction says BEGIN READ WRITE, so read() cannot write.
    options: "-c default_transaction_read_only=on",
  };
  const sslChoices: Array<PoolConfig["ssl"]> =
    settings.sslMode === "disable"
      ? [false]
      : settings.sslMode === "prefer"
        ? [{ rejectUnauthorized: false }, false]
        : settings.sslMode === "require"
          ? [{ rejectUnauthorized: false }]
          : [
              {
                rejectUnauthorized: true,
                ...(settings.sslRootCert ? { ca: settings.sslRootCert } : {}),
                ...(settings.sslMode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
              },
            ];

  let lastError: unknown;
  for (const ssl of sslChoices) {
    const pool = new Pool({ ...base, ssl });
    pool.on("error", () => {
      // An idle connection died (server restart); the pool drops it and the next checkout reconnects.
    });
    try {
      const client = await pool.connect();
      client.release();
      const store = new PostgresShardStore(settings, pool);
      await store.initialize();
      return store;
    } catch (error) {
      lastError = error;
      await pool.end().catch(() => undefined);
      const noTls = /does not support SSL/i.test(String((error as Error)?.message));
      if (!(noTls && settings.sslMode === "prefer")) break;
    }
  }
  throw toDbError(lastError, `connect to PostgreSQL at ${url.host}${url.pathname}`);
}

class PostgresShardStore implements ShardStore {
  readonly kind = "postgres" as const;
  private readonly clients = new WeakMap<PoolClient, ClientState>();
  private readonly cacheCounters: CacheCounters = { hits: 0, misses: 0 };
  private readonly counters: QueryCounters = { queryCount: 0, queryErrorCount: 0 };
  private readonly knownShards = new Set<string>();
  /** Bumped by DDL on a shard so statements prepared against its old tables are not reused. */
  private readonly schemaGenerations = new Map<string, number>();
  /** Transactions begun here and not finished: open, failed or preparing. Prepared ones live in PostgreSQL. */
  private readonly active = new Map<string, PostgresLocalTransaction>();
  /** Transactions this store prepared, so resolving them by id also updates the caller's object. */
  private readonly preparedHere = new Map<string, PostgresLocalTransaction>();
  private cachedStatementCount = 0;
  private closed = false;

  constructor(
    readonly settings: PostgresShardStoreSettings,
    private readonly pool: Pool,
  ) {}

  async initialize(): Promise<void> {
    await this.withTransaction("initialize", async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(nodeSchema)}))`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(nodeSchema)}`);
      await this.compiled(
        client,
        postgresBuilder<PostgresNodeTables>()
          .schema.withSchema(nodeSchema)
          .createTable("shards")
          .ifNotExists()
          .addColumn("shard_id", "text", (column) => column.primaryKey())
          .addColumn("schema_name", "text", (column) => column.notNull().unique())
          .addColumn("created_at_ms", "bigint", (column) => column.notNull())
          .compile(),
      );
    });
    await this.refreshShards();
  }

  // ---- connections -----------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new DbError("CLOSED", "the shard store is closed");
  }

  async connect(): Promise<PoolClient> {
    this.assertOpen();
    try {
      return await this.pool.connect();
    } catch (error) {
      if (this.pool.totalCount >= this.settings.maxConnections) {
        throw new DbError(
          "BUSY",
          `all ${this.settings.maxConnections} PostgreSQL connections stayed in use for ${this.settings.connectTimeoutMs} ms (DATABASE_MAX_CONNECTIONS)`,
          { cause: error },
        );
      }
      throw toDbError(error, "get a PostgreSQL connection");
    }
  }

  private state(client: PoolClient): ClientState {
    let state = this.clients.get(client);
    if (!state) {
      const created: ClientState = {
        statements: new LruCache<string, string>(this.settings.statementCacheSize, (_key, name) => {
          this.cachedStatementCount -= 1;
          // Forget it on the server and in pg's own per-connection record of parsed statements.
          client.query(`DEALLOCATE ${name}`).catch(() => undefined);
          const parsed = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection
            ?.parsedStatements;
          if (parsed) delete parsed[name];
        }),
        nextStatement: 0,
        sessionSchema: null,
      };
      this.clients.set(client, created);
      state = created;
    }
    return state;
  }

  /** Runs one user statement on `client` as a named (cached) prepared statement. */
  async runUser(client: PoolClient, schema: string, sql: string, params: readonly SqlValue[], context: string): Promise<{ result: StatementResult; wrote: boolean }> {
    const state = this.state(client);
    const key = `${schema}\u0000${this.schemaGenerations.get(schema) ?? 0}\u0000${sql}`;
    let name = state.statements.get(key);
    if (name !== undefined) {
      this.cacheCounters.hits += 1;
    } else {
      this.cacheCounters.misses += 1;
      if (this.settings.statementCacheSize > 0) {
        name = `myc_s${state.nextStatement++}`;
        this.cachedStatementCount += 1;
        state.statements.set(key, name);
      }
    }
    let result: QueryResult<unknown[]>;
    try {
      result = await client.query<unknown[]>({
        ...(name !== undefined ? { name } : {}),
        text: toPostgresSql(sql),
        values: params.map(toPostgresParam),
        rowMode: "array",
        queryMode: "extended",
      } as never);
    } catch (error) {
      throw toDbError(error, context);
    }
    const command = (result.command ?? "").toUpperCase();
    const isRead = command === "SELECT" || command === "SHOW" || command === "EXPLAIN" || command === "";
    return {
      wrote: !isRead || /\b(INSERT|UPDATE|DELETE|MERGE)\b/i.test(sql),
      result: {
        columns: (result.fields ?? []).map((field) => field.name),
        rows: (result.rows ?? []) as SqlValue[][],
        rowsAffected: isRead ? 0 : (result.rowCount ?? 0),
        lastInsertRowid: null,
      },
    };
  }

  /** Runs a Kysely-compiled internal query. */
  async compiled<Row>(client: PoolClient, query: CompiledQuery<Row>): Promise<Row[]> {
    const result = await client.query(query.sql, query.parameters as unknown[]);
    return result.rows as Row[];
  }

  private beginSql(schema: string | null): string {
    const parts = ["BEGIN READ WRITE", `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.settings.lockWaitTimeoutMs))}`];
    if (schema) parts.push(`SET LOCAL search_path TO ${quoteIdentifier(schema)}`);
    return parts.join("; ");
  }

  /** BEGIN READ WRITE … COMMIT on a pooled connection; ROLLBACK (or discarding the connection) on failure. */
  private async withTransaction<T>(context: string, body: (client: PoolClient) => Promise<T>, schema: string | null = null): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query(this.beginSql(schema));
      const result = await body(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      throw toDbError(error, context);
    } finally {
      client.release(broken ? true : undefined);
    }
  }

  // ---- shards ----------------------------------------------------------------------------------------------

  private async refreshShards(): Promise<void> {
    const client = await this.connect();
    try {
      const rows = await this.compiled(client, nodeBuilder.selectFrom("shards").select("shard_id").compile());
      this.knownShards.clear();
      for (const row of rows) this.knownShards.add(row.shard_id);
    } catch (error) {
      throw toDbError(error, "list shards");
    } finally {
      client.release();
    }
  }

  /** The shard's schema; SHARD_NOT_FOUND when this node does not hold it. */
  async schemaOf(shardId: string): Promise<string> {
    this.assertOpen();
    assertShardId(shardId);
    if (!this.knownShards.has(shardId)) {
      await this.refreshShards();
      if (!this.knownShards.has(shardId)) throw new DbError("SHARD_NOT_FOUND", `this node holds no shard ${shardId}`);
    }
    return postgresSchemaName(shardId);
  }

  async ensureShard(shardId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    const schema = postgresSchemaName(shardId);
    await this.withTransaction(`create shard ${shardId}`, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(schema)}))`);
      const existing = await this.compiled(
        client,
        nodeBuilder.selectFrom("shards").select("schema_name").where("shard_id", "=", shardId).compile(),
      );
      if (existing[0] && existing[0].schema_name !== schema) {
        throw new DbError("INTERNAL", `shard ${shardId} is registered with schema ${existing[0].schema_name}, expected ${schema}`);
      }
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      await this.compiled(
        client,
        postgresBuilder<ShardTables>()
          .schema.withSchema(schema)
          .createTable("_myc_txn")
          .ifNotExists()
          .addColumn("tx_id", "text", (column) => column.primaryKey())
          .addColumn("prepared_at_ms", "bigint", (column) => column.notNull())
          .compile(),
      );
      await this.compiled(
        client,
        postgresBuilder<ShardTables>()
          .schema.withSchema(schema)
          .createTable("_myc_meta")
          .ifNotExists()
          .addColumn("key", "text", (column) => column.primaryKey())
          .addColumn("value", "text", (column) => column.notNull())
          .compile(),
      );
      await this.compiled(
        client,
        nodeBuilder
          .insertInto("shards")
          .values({ shard_id: shardId, schema_name: schema, created_at_ms: Date.now() })
          .onConflict((conflict) => conflict.column("shard_id").doNothing())
          .compile(),
      );
    });
    this.knownShards.add(shardId);
  }

  async dropShard(shardId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    for (const transaction of this.active.values()) {
      if (transaction.shardId === shardId) {
        throw new DbError("BUSY", `shard ${shardId} has open transaction ${transaction.txId}; finish it first`);
      }
    }
    const prepared = (await this.recoverPrepared()).filter((entry) => entry.shardId === shardId);
    if (prepared.length > 0) {
      throw new DbError("BUSY", `shard ${shardId} has prepared transaction ${prepared[0]!.txId}; resolve it first`);
    }
    const schema = postgresSchemaName(shardId);
    await this.withTransaction(`drop shard ${shardId}`, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(schema)}))`);
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`);
      await this.compiled(client, nodeBuilder.deleteFrom("shards").where("shard_id", "=", shardId).compile());
    });
    this.knownShards.delete(shardId);
    this.schemaGenerations.set(schema, (this.schemaGenerations.get(schema) ?? 0) + 1);
  }

  async listShards(): Promise<string[]> {
    this.assertOpen();
    await this.refreshShards();
    return [...this.knownShards].sort();
  }

  async sizeBytes(shardId: string): Promise<number> {
    const schema = await this.schemaOf(shardId);
    const client = await this.connect();
    try {
      const result = await client.query<{ bytes: string | number }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 AS bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')`,
        [schema],
      );
      return Number(result.rows[0]?.bytes ?? 0);
    } catch (error) {
      throw toDbError(error, `size of shard ${shardId}`);
    } finally {
      client.release();
    }
  }

  // ---- statements ------------------------------------------------------------------------------------------

  async read(shardId: string, sql: string, params: readonly SqlValue[] = []): Promise<StatementResult> {
    const schema = await this.schemaOf(shardId);
    assertUserStatement(sql);
    assertSqlValues(params);
    return observed(this.settings.onQuery, this.counters, "read", shardId, async () => {
      const client = await this.connect();
      let broken = false;
      try {
        const state = this.state(client);
        if (state.sessionSchema !== schema) {
          // Session-level, outside any transaction, so it sticks; transactions use SET LOCAL on top of it.
          state.sessionSchema = null;
          await client.query(`SET search_path TO ${quoteIdentifier(schema)}`);
          state.sessionSchema = schema;
        }
        return (await this.runUser(client, schema, sql, params, `read on shard ${shardId}`)).result;
      } catch (error) {
        const mapped = toDbError(error, `read on shard ${shardId}`);
        broken = mapped.code === "UNAVAILABLE" || mapped.code === "INTERNAL";
        throw mapped;
      } finally {
        client.release(broken ? true : undefined);
      }
    });
  }

  async applySchema(shardId: string, ddl: readonly string[]): Promise<void> {
    const schema = await this.schemaOf(shardId);
    for (const statement of ddl) assertUserStatement(statement);
    await observed(this.settings.onQuery, this.counters, "ddl", shardId, () =>
      this.withTransaction(
        `schema change on shard ${shardId}`,
        async (client) => {
          for (const [index, statement] of ddl.entries()) {
            try {
              // Extended protocol: exactly one statement per element.
              await client.query({ text: statement, values: [], queryMode: "extended" } as never);
            } catch (error) {
              throw toDbError(error, `schema statement ${index + 1} on shard ${shardId}`);
            }
          }
        },
        schema,
      ),
    );
    this.schemaGenerations.set(schema, (this.schemaGenerations.get(schema) ?? 0) + 1);
  }

  async executeAutocommit(shardId: string, statements: readonly Statement[]): Promise<StatementResult[]> {
    const schema = await this.schemaOf(shardId);
    if (statements.length === 0) throw new DbError("INVALID_ARGUMENT", "executeAutocommit needs at least one statement");
    for (const statement of statements) {
      assertUserStatement(statement.sql);
      assertSqlValues(statement.params);
    }
    // No application-level batching: PostgreSQL already group-commits concurrent sessions' WAL flushes.
    return observed(this.settings.onQuery, this.counters, "autocommit", shardId, () =>
      this.withTransaction(
        `autocommit on shard ${shardId}`,
        async (client) => {
          const results: StatementResult[] = [];
          for (const [index, statement] of statements.entries()) {
            results.push(
              (await this.runUser(client, schema, statement.sql, statement.params, `statement ${index + 1} on shard ${shardId}`)).result,
            );
          }
          return results;
        },
        schema,
      ),
    );
  }

  async pruneTransactionMarkers(shardId: string, preparedBeforeMs: number): Promise<number> {
    const schema = await this.schemaOf(shardId);
    return this.withTransaction(`prune markers on shard ${shardId}`, async (client) => {
      const query = shardBuilder.withSchema(schema).deleteFrom("_myc_txn").where("prepared_at_ms", "<", preparedBeforeMs).compile();
      const result = await client.query(query.sql, query.parameters as unknown[]);
      return result.rowCount ?? 0;
    });
  }

  // ---- local transactions and 2PC --------------------------------------------------------------------------

  async begin(shardId: string, txId: string): Promise<LocalTransaction> {
    const schema = await this.schemaOf(shardId);
    assertTxId(txId);
    const key = activeKey(shardId, txId);
    if (this.active.has(key)) throw new DbError("INVALID_ARGUMENT", `transaction ${txId} is already open on shard ${shardId}`);
    const client = await this.connect();
    try {
      await client.query(this.beginSql(schema));
    } catch (error) {
      client.release(true);
      throw toDbError(error, `begin on shard ${shardId}`);
    }
    const transaction = new PostgresLocalTransaction(this, client, shardId, schema, txId);
    this.active.set(key, transaction);
    return transaction;
  }

  finished(transaction: PostgresLocalTransaction): void {
    const key = activeKey(transaction.shardId, transaction.txId);
    if (this.active.get(key) === transaction) this.active.delete(key);
    if (transaction.state === "prepared") this.preparedHere.set(key, transaction);
  }

  private resolvedHere(shardId: string, txId: string, state: "committed" | "rolled_back"): void {
    const key = activeKey(shardId, txId);
    const transaction = this.preparedHere.get(key);
    if (transaction) {
      transaction.state = state;
      this.preparedHere.delete(key);
    }
  }

  observe<T>(operation: Parameters<typeof observed>[2], shardId: string, run: () => Promise<T>): Promise<T> {
    return observed(this.settings.onQuery, this.counters, operation, shardId, run);
  }

  /** Runs COMMIT PREPARED / ROLLBACK PREPARED; false when PostgreSQL has no such prepared transaction. */
  private async finishPrepared(verb: "COMMIT" | "ROLLBACK", shardId: string, txId: string): Promise<boolean> {
    const client = await this.connect();
    try {
      await client.query(`${verb} PREPARED ${quoteLiteral(preparedTransactionId(txId, shardId))}`);
      return true;
    } catch (error) {
      if (sqlStateOf(error) === "42704") return false; // undefined_object: no such prepared transaction
      throw toDbError(error, `${verb.toLowerCase()} prepared ${txId} on shard ${shardId}`);
    } finally {
      client.release();
    }
  }

  /**
   * Whether the transaction's commit marker is visible in the shard: the marker row is written inside the
   * transaction before PREPARE TRANSACTION, so it is visible exactly when the transaction committed.
   */
  private async hasCommitMarker(shardId: string, txId: string): Promise<boolean> {
    const schema = postgresSchemaName(shardId);
    const client = await this.connect();
    try {
      const rows = await this.compiled(
        client,
        shardBuilder.withSchema(schema).selectFrom("_myc_txn").select("tx_id").where("tx_id", "=", txId).compile(),
      );
      return rows.length > 0;
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === "42P01" || state === "3F000") return false; // the shard is gone: nothing committed there
      throw toDbError(error, `commit marker of ${txId} on shard ${shardId}`);
    } finally {
      client.release();
    }
  }

  async commitPrepared(shardId: string, txId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    assertTxId(txId);
    await this.observe("commit", shardId, async () => {
      const local = this.active.get(activeKey(shardId, txId));
      if (local) {
        await local.settled();
        if (local.state !== "prepared") {
          throw new DbError("NOT_PREPARED", `transaction ${txId} on shard ${shardId} is ${local.state}, not prepared`);
        }
      }
      if ((await this.finishPrepared("COMMIT", shardId, txId)) || (await this.hasCommitMarker(shardId, txId))) {
        // (the marker: it committed before, e.g. before a crash)
        this.resolvedHere(shardId, txId, "committed");
        return;
      }
      if (!this.knownShards.has(shardId)) await this.schemaOf(shardId); // SHARD_NOT_FOUND when it is not here
      throw new DbError("NOT_PREPARED", `transaction ${txId} is not prepared on shard ${shardId}: it was rolled back or never prepared`);
    });
  }

  async abortPrepared(shardId: string, txId: string): Promise<void> {
    this.assertOpen();
    assertShardId(shardId);
    assertTxId(txId);
    await this.observe("rollback", shardId, async () => {
      const local = this.active.get(activeKey(shardId, txId));
      if (local) {
        await local.settled();
        if (local.state !== "prepared") {
          await local.rollbackLocal();
          return;
        }
      }
      if (!(await this.finishPrepared("ROLLBACK", shardId, txId)) && (await this.hasCommitMarker(shardId, txId))) {
        throw new DbError("ALREADY_COMMITTED", `transaction ${txId} already committed on shard ${shardId}`);
      }
      this.resolvedHere(shardId, txId, "rolled_back");
    });
  }

  async recoverPrepared(): Promise<PreparedTransaction[]> {
    const client = await this.connect();
    try {
      const result = await client.query<{ gid: string; prepared_ms: string | number }>(
        `SELECT gid, (extract(epoch FROM prepared) * 1000)::int8 AS prepared_ms
           FROM pg_prepared_xacts
          WHERE database = current_database() AND gid LIKE 'myc\\_%'
          ORDER BY prepared, gid`,
      );
      const prepared: PreparedTransaction[] = [];
      for (const row of result.rows) {
        const ids = parsePreparedTransactionId(row.gid);
        if (ids) prepared.push({ ...ids, statements: null, preparedAtMs: Number(row.prepared_ms) });
      }
      return prepared;
    } catch (error) {
      throw toDbError(error, "list prepared transactions");
    } finally {
      client.release();
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async checkReady(options: { minPreparedTransactions?: number } = {}): Promise<void> {
    const minimum = options.minPreparedTransactions ?? 1;
    const client = await this.connect();
    let value: number;
    try {
      const result = await client.query<{ max_prepared_transactions: string }>("SHOW max_prepared_transactions");
      value = Number.parseInt(result.rows[0]?.max_prepared_transactions ?? "0", 10);
    } catch (error) {
      throw toDbError(error, "read max_prepared_transactions");
    } finally {
      client.release();
    }
    if (value < minimum) {
      throw new DbError(
        "CONFIG",
        `PostgreSQL has max_prepared_transactions = ${value}, but Mycelium needs at least ${minimum} for two-phase commit: ` +
          "set max_prepared_transactions to at least MYCELIUM_MAX_TRANSACTIONS in postgresql.conf and restart PostgreSQL",
      );
    }
  }

  stats(): ShardStoreStats {
    let openTransactions = 0;
    for (const transaction of this.active.values()) if (transaction.state !== "prepared") openTransactions += 1;
    return {
      statementCache: { hits: this.cacheCounters.hits, misses: this.cacheCounters.misses, size: this.cachedStatementCount },
      pool: { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount },
      queryCount: this.counters.queryCount,
      queryErrorCount: this.counters.queryErrorCount,
      openShards: this.knownShards.size,
      openTransactions,
      preparedTransactions: this.preparedHere.size,
      lockWaiting: this.pool.waitingCount,
      groupCommits: { batches: 0, requests: 0 },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const transaction of [...this.active.values()]) {
      await transaction.settled();
      if (transaction.state !== "prepared") await transaction.rollbackLocal().catch(() => undefined);
    }
    await this.pool.end();
  }
}

function activeKey(shardId: string, txId: string): string {
  return `${shardId}\u0000${txId}`;
}

class PostgresLocalTransaction implements LocalTransaction {
  state: LocalTransactionState = "open";
  readonly statements: Statement[] = [];
  /** The operation in flight (an execute or the prepare), so abort can wait for it. */
  private inFlight: Promise<unknown> = Promise.resolve();
  private client: PoolClient | null;
  private preparing = false;

  constructor(
    private readonly store: PostgresShardStore,
    client: PoolClient,
    readonly shardId: string,
    private readonly schema: string,
    readonly txId: string,
  ) {
    this.client = client;
  }

  /** Resolves when no operation of this transaction is running. */
  async settled(): Promise<void> {
    await this.inFlight.catch(() => undefined);
  }

  private track<T>(operation: Promise<T>): Promise<T> {
    this.inFlight = operation;
    return operation;
  }

  private assertOpen(action: string): PoolClient {
    if (this.state === "failed") {
      throw new DbError("ABORTED", `transaction ${this.txId} on shard ${this.shardId} failed earlier; roll it back`);
    }
    if (this.state !== "open" || !this.client || this.preparing) {
      const state = this.preparing ? "preparing" : this.state;
      throw new DbError("INTERNAL", `cannot ${action} transaction ${this.txId} on shard ${this.shardId}: it is ${state}`);
    }
    return this.client;
  }

  async execute(sql: string, params: readonly SqlValue[] = []): Promise<StatementResult> {
    const client = this.assertOpen("execute in");
    assertUserStatement(sql);
    assertSqlValues(params);
    return this.track(
      this.store.observe("execute", this.shardId, async () => {
        try {
          const { result, wrote } = await this.store.runUser(client, this.schema, sql, params, `statement on shard ${this.shardId}`);
          if (wrote) this.statements.push({ sql, params: [...params] });
          return result;
        } catch (error) {
          if (this.state === "open") this.state = "failed";
          throw error;
        }
      }),
    );
  }

  async prepare(): Promise<void> {
    const client = this.assertOpen("prepare");
    this.preparing = true;
    const operation = this.store.observe("prepare", this.shardId, async () => {
      try {
        const marker = postgresBuilder<ShardTables>()
          .withSchema(this.schema)
          .insertInto("_myc_txn")
          .values({ tx_id: this.txId, prepared_at_ms: Date.now() })
          .compile();
        await client.query(marker.sql, marker.parameters as unknown[]);
        await client.query(`PREPARE TRANSACTION ${quoteLiteral(preparedTransactionId(this.txId, this.shardId))}`);
      } catch (error) {
        this.preparing = false;
        await this.rollbackLocal().catch(() => undefined);
        const mapped = toDbError(error, `prepare ${this.txId} on shard ${this.shardId}`);
        if (mapped.backendCode === "23505") {
          throw new DbError("INVALID_ARGUMENT", `transaction id ${this.txId} was already used on shard ${this.shardId}`, { cause: error });
        }
        throw mapped;
      }
      // The prepared transaction belongs to the server now, not to this session.
      this.preparing = false;
      this.state = "prepared";
      this.releaseClient(false);
      this.store.finished(this);
    });
    await this.track(operation);
  }

  async commit(): Promise<void> {
    if (this.state === "committed") return;
    if (this.state === "prepared") return this.store.commitPrepared(this.shardId, this.txId);
    const client = this.assertOpen("commit");
    await this.track(
      this.store.observe("commit", this.shardId, async () => {
        try {
          await client.query("COMMIT");
          this.end("committed", false);
        } catch (error) {
          this.end("rolled_back", true);
          throw toDbError(error, `commit on shard ${this.shardId}`);
        }
      }),
    );
  }

  async rollback(): Promise<void> {
    if (this.state === "prepared") return this.store.abortPrepared(this.shardId, this.txId);
    await this.settled();
    await this.rollbackLocal();
  }

  /** Rolls back the open (not prepared) transaction on its connection. */
  async rollbackLocal(): Promise<void> {
    if (this.state !== "open" && this.state !== "failed") return;
    const client = this.client;
    if (!client) return;
    try {
      await client.query("ROLLBACK");
      this.end("rolled_back", false);
    } catch (error) {
      this.end("rolled_back", true);
      throw toDbError(error, `rollback on shard ${this.shardId}`);
    }
  }

  private end(state: "committed" | "rolled_back", broken: boolean): void {
    this.state = state;
    this.releaseClient(broken);
    this.store.finished(this);
  }

  private releaseClient(broken: boolean): void {
    const client = this.client;
    this.client = null;
    client?.release(broken ? true : undefined);
  }
}
