import { randomUUID } from "node:crypto";
import type { CompiledQuery } from "kysely";
import { Pool, type PoolClient, type PoolConfig, type QueryResult } from "pg";
import { DbError } from "../db-error";
import {
  assertShardId,
  assertTxId,
  databaseTag,
  parsePreparedTransactionId,
  postgresSchemaName,
  preparedTransactionId,
} from "../identifiers";
import { type PostgresNodeTables, postgresBuilder, type ShardTables } from "../internal/kysely";
import { type CacheCounters, LruCache } from "../internal/lru-cache";
import { Coalescer } from "../internal/coalescer";
import { observed, type QueryCounters } from "../internal/observe";
import { assertUserStatement } from "../internal/user-statement";
import { assertSqlValues, type SqlValue, type Statement, type StatementResult } from "../sql-value";
import type {
  LocalTransaction,
  LocalTransactionState,
  PostgresSslMode,
  PreparedTransaction,
  QueryObserver,
  ReadOptions,
  ShardStore,
  ShardStoreStats,
} from "../shard-store";
import { visibleShardIds } from "../shard-store";
import { ChangeNotifier } from "../replication/change-notifier";
import { changesDelta, checksumToHex } from "../replication/checksum";
import { decodeChanges, encodeChanges } from "../replication/codec";
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
import { decodeStatements, encodeStatements } from "../sql-value";
import { toPostgresSql } from "../to-postgres-sql";
import { sqlStateOf, toDbError } from "./postgres-errors";
import {
  appendSchemaLog,
  captureSetting,
  checksumFromNumeric,
  drainCapture,
  installCapture,
  type PgCapturedTable,
  readUserTables,
  replicationObjectsSql,
  runSchemaChange,
  sqlLiteral,
} from "./postgres-replication";
import {
  applyEntriesPg,
  assertSameEntries,
  lockPosition,
  type PgShardContext,
  restoreSnapshotPg,
  snapshotChunksPg,
  verifyChecksumPg,
} from "./postgres-replica-ops";
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
  nodeId: string | undefined;
  changeCapture: boolean;
  maxChangeWaiters: number;
}

const nodeSchema = "mycelium_node";
/** Bump when createShardObjects changes, so shards set up by an older version get the new objects on start. */
const SHARD_OBJECTS_VERSION = 1;
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

/** What a write left for the log: an lsn (logged inline), "staged" (published after COMMIT), or nothing. */
type WriteOutcome = number | "staged" | null;

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
  /** Capture metadata per schema (columns and their encodings), loaded from the catalog on first use. */
  private readonly tableCache = new Map<string, Map<string, PgCapturedTable>>();
  readonly notifier: ChangeNotifier;
  readonly changeLog = { entriesWritten: 0, entriesApplied: 0, entriesStaged: 0 };
  nodeId = "";
  /** Tags this database's prepared-transaction ids (they are global to the server; see preparedTransactionId). */
  gidTag = "";
  /** Per shard: the coalesced publish of staged entries (see postgres-replication.ts). */
  private readonly publishers = new Map<string, Coalescer>();
  /** Whether this role may SET session_replication_role (superuser, or granted): apply then skips FK triggers. */
  replicationRole = false;

  constructor(
    readonly settings: PostgresShardStoreSettings,
    private readonly pool: Pool,
  ) {
    this.notifier = new ChangeNotifier(settings.maxChangeWaiters);
  }

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
      await this.compiled(
        client,
        postgresBuilder<PostgresNodeTables>()
          .schema.withSchema(nodeSchema)
          .createTable("node_meta")
          .ifNotExists()
          .addColumn("key", "text", (column) => column.primaryKey())
          .addColumn("value", "text", (column) => column.notNull())
          .compile(),
      );
      await this.compiled(
        client,
        postgresBuilder<PostgresNodeTables>()
          .schema.withSchema(nodeSchema)
          .createTable("adopted")
          .ifNotExists()
          .addColumn("shard_id", "text", (column) => column.notNull())
          .addColumn("tx_id", "text", (column) => column.notNull())
          .addColumn("statements", "text", (column) => column.notNull())
          .addColumn("adopted_at_ms", "bigint", (column) => column.notNull())
          .addColumn("min_applied_lsn", "bigint", (column) => column.notNull())
          .addPrimaryKeyConstraint("adopted_pk", ["shard_id", "tx_id"])
          .compile(),
      );
      const database = await client.query<{ name: string }>("SELECT current_database() AS name");
      this.gidTag = databaseTag(database.rows[0]!.name);
      if (this.settings.nodeId !== undefined) {
        this.nodeId = this.settings.nodeId;
      } else {
        await this.compiled(
          client,
          nodeBuilder
            .insertInto("node_meta")
            .values({ key: "node_id", value: `node-${randomUUID()}` })
            .onConflict((conflict) => conflict.column("key").doNothing())
            .compile(),
        );
        const rows = await this.compiled(client, nodeBuilder.selectFrom("node_meta").select("value").where("key", "=", "node_id").compile());
        this.nodeId = rows[0]!.value;
      }
    });
    this.replicationRole = await this.withTransaction("probe session_replication_role", async (client) => {
      await client.query("SAVEPOINT probe");
      try {
        await client.query("SET LOCAL session_replication_role = replica");
        return true;
      } catch {
        await client.query("ROLLBACK TO SAVEPOINT probe");
        return false;
      }
    });
    await this.refreshShards();
    // A crash between COMMIT PREPARED and the publish that follows it leaves staged entries: log them now.
    for (const shardId of this.knownShards) await this.publishPending(shardId).catch(() => undefined);
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

  /**
   * Runs one user statement on `client` as a named (cached) prepared statement. `schema`: the shard's
   * schema, or every schema on the search path (a read that sees other shards).
   */
  async runUser(client: PoolClient, schema: string | readonly string[], sql: string, params: readonly SqlValue[], context: string): Promise<{ result: StatementResult; wrote: boolean }> {
    const state = this.state(client);
    const schemas = typeof schema === "string" ? [schema] : schema;
    // A DDL bumps its schema's generation, so no statement prepared before it is reused after it.
    const key = `${schemas.map((name) => `${name}\u0000${this.schemaGenerations.get(name) ?? 0}`).join("\u0000")}\u0000${sql}`;
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

  beginSql(schema: string | null): string {
    const parts = ["BEGIN READ WRITE", `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.settings.lockWaitTimeoutMs))}`];
    if (schema) parts.push(`SET LOCAL search_path TO ${quoteIdentifier(schema)}`);
    return parts.join("; ");
  }

  /**
   * BEGIN READ WRITE … COMMIT on a pooled connection; ROLLBACK (or discarding the connection) on failure. A body
   * that commits by itself (sending COMMIT with its last statement) sets `done.committed`.
   */
  private async withTransaction<T>(
    context: string,
    body: (client: PoolClient, done: { committed: boolean }) => Promise<T>,
    schema: string | null = null,
  ): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      await client.query(this.beginSql(schema));
      const done = { committed: false };
      const result = await body(client, done);
      if (!done.committed) await client.query("COMMIT");
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
      // A shard set up by this version already has its objects. Skipping the DDL matters: after a restart,
      // recovered prepared transactions hold locks that CREATE INDEX IF NOT EXISTS would wait behind.
      if (existing[0] && (await this.objectsVersion(client, schema)) === SHARD_OBJECTS_VERSION) return;
      await this.createShardObjects(client, schema);
      await client.query(
        `INSERT INTO ${quoteIdentifier(schema)}._myc_meta (key, value) VALUES ('objects_version', $1)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [String(SHARD_OBJECTS_VERSION)],
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
    this.tableCache.delete(schema);
    this.knownShards.add(shardId);
  }

  /** The version of the internal objects a shard schema was last set up with; 0 when never recorded. */
  private async objectsVersion(client: PoolClient, schema: string): Promise<number> {
    const meta = await client.query<{ present: string | null }>(`SELECT to_regclass($1) AS present`, [`${quoteIdentifier(schema)}._myc_meta`]);
    if (!meta.rows[0]?.present) return 0;
    const row = await client.query<{ value: string }>(`SELECT value FROM ${quoteIdentifier(schema)}._myc_meta WHERE key = 'objects_version'`);
    return Number(row.rows[0]?.value ?? 0);
  }

  /** The schema with its internal tables and functions, and capture on the user tables it has (idempotent). */
  private async createShardObjects(client: PoolClient, schema: string): Promise<void> {
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
    for (const statement of replicationObjectsSql(schema)) await client.query(statement);
    if (this.settings.changeCapture) {
      // Capture on tables that lack it (created before capture existed). Only those: replacing a trigger needs
      // an ACCESS EXCLUSIVE lock, which would wait behind every open or prepared transaction on the table.
      const captured = await client.query<{ relname: string }>(
        `SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND t.tgname = '_myc_capture'`,
        [schema],
      );
      const have = new Set(captured.rows.map((row) => row.relname));
      const missing = (await readUserTables(client, schema)).filter((table) => table.keyColumns.length > 0 && !have.has(table.name));
      if (missing.length > 0) await installCapture(client, schema, missing);
    }
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
      await this.compiled(client, nodeBuilder.deleteFrom("adopted").where("shard_id", "=", shardId).compile());
    });
    this.knownShards.delete(shardId);
    this.tableCache.delete(schema);
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

  async read(shardId: string, sql: string, params: readonly SqlValue[] = [], options?: ReadOptions): Promise<StatementResult> {
    const schema = await this.schemaOf(shardId);
    assertUserStatement(sql);
    assertSqlValues(params);
    // Visible shards go on the search path after the shard's own schema: plain names resolve in order.
    const schemas = [schema, ...(await Promise.all(visibleShardIds(shardId, options).map((id) => this.schemaOf(id))))];
    const searchPath = schemas.map(quoteIdentifier).join(", ");
    return observed(this.settings.onQuery, this.counters, "read", shardId, async () => {
      const client = await this.connect();
      let broken = false;
      try {
        const state = this.state(client);
        if (state.sessionSchema !== searchPath) {
          // Session-level, outside any transaction, so it sticks; transactions use SET LOCAL on top of it.
          state.sessionSchema = null;
          await client.query(`SET search_path TO ${searchPath}`);
          state.sessionSchema = searchPath;
        }
        return (await this.runUser(client, schemas, sql, params, `read on shard ${shardId}`)).result;
      } catch (error) {
        const mapped = toDbError(error, `read on shard ${shardId}`);
        broken = mapped.code === "UNAVAILABLE" || mapped.code === "INTERNAL";
        throw mapped;
      } finally {
        client.release(broken ? true : undefined);
      }
    });
  }

  async applySchema(shardId: string, ddl: readonly string[], options?: WriteOptions): Promise<void> {
    const schema = await this.schemaOf(shardId);
    for (const statement of ddl) assertUserStatement(statement);
    assertWriteOptions(options);
    const capture = this.settings.changeCapture;
    if (capture) assertReplicableDdl(ddl);
    const lsn = await observed(this.settings.onQuery, this.counters, "ddl", shardId, () =>
      this.withTransaction(
        `schema change on shard ${shardId}`,
        async (client) => {
          // Rows the statements themselves change are covered by the rescan and by replicas re-running them.
          await client.query(`SET LOCAL ${captureSetting} = 'on'`);
          const result = await runSchemaChange(client, schema, ddl, capture, (n) => `schema statement ${n} on shard ${shardId}`);
          if (!capture) return null;
          await appendSchemaLog(client, ddl);
          const published = await this.publish(client, null, options?.epoch, result.delta, "[]", JSON.stringify(ddl), "write");
          this.tableCache.delete(schema);
          return published;
        },
        schema,
      ),
    );
    this.tableCache.delete(schema);
    this.schemaGenerations.set(schema, (this.schemaGenerations.get(schema) ?? 0) + 1);
    await this.afterCommit(shardId, lsn);
  }

  // ---- change log (primary side) ---------------------------------------------------------------------------

  /** Capture metadata of one table, from the cache or the catalog. */
  async capturedTable(client: PoolClient, schema: string, name: string): Promise<PgCapturedTable> {
    let tables = this.tableCache.get(schema);
    if (!tables?.has(name)) {
      tables = new Map((await readUserTables(client, schema)).map((table) => [table.name, table]));
      this.tableCache.set(schema, tables);
    }
    const table = tables.get(name);
    if (!table) throw new DbError("INTERNAL", `captured rows of table ${name}, which schema ${schema} does not have`);
    return table;
  }

  async capturedTables(client: PoolClient, schema: string): Promise<Map<string, PgCapturedTable>> {
    let tables = this.tableCache.get(schema);
    if (!tables) {
      tables = new Map((await readUserTables(client, schema)).map((table) => [table.name, table]));
      this.tableCache.set(schema, tables);
    }
    return tables;
  }

  forgetTables(schema: string): void {
    this.tableCache.delete(schema);
  }

  /**
   * Drains this transaction's captured rows and, when they changed anything, hands the entry to `_myc_publish`:
   * logged inline (returns the new head lsn) or staged under contention ("staged"); null when nothing changed.
   */
  async finishWrite(client: PoolClient, schema: string, txId: string | null, epoch: number | undefined): Promise<WriteOutcome> {
    const events = await drainCapture(client, (name) => this.capturedTable(client, schema, name));
    const changes = collapseEvents(events, (table) => this.tableCache.get(schema)?.get(table)?.keyColumns ?? []);
    if (changes.length === 0) {
      await client.query("COMMIT");
      return null;
    }
    // The entry and the COMMIT in one round trip (simple protocol, so the values travel as literals).
    const results = (await client.query(
      `${this.publishCall(txId, epoch, changesDelta(changes), encodeChanges(changes), null, "write")}; COMMIT`,
    )) as unknown as Array<{ rows: Array<{ out_lsn: string | number | null }> }>;
    const lsn = results[0]!.rows[0]!.out_lsn;
    return lsn === null ? "staged" : Number(lsn);
  }

  /** `SELECT out_lsn FROM _myc_publish(…)` with its arguments as literals. */
  publishCall(txId: string | null, epoch: number | undefined, delta: bigint, changes: string | null, ddl: string | null, mode: string): string {
    const number = (value: number | bigint | undefined) => (value === undefined ? "NULL" : `${BigInt(value).toString()}`);
    return (
      `SELECT out_lsn FROM _myc_publish(${sqlLiteral(txId)}, ${sqlLiteral(this.nodeId)}, ${number(epoch)}::bigint, ${delta.toString()}::numeric, ` +
      `${sqlLiteral(changes)}, ${sqlLiteral(ddl)}, ${Date.now()}::bigint, ${sqlLiteral(mode)})`
    );
  }

  /** `_myc_publish` on the transaction of `client` (its search_path is the shard's); see postgres-replication.ts. */
  async publish(
    client: PoolClient,
    txId: string | null,
    epoch: number | undefined,
    delta: bigint,
    changes: string | null,
    ddl: string | null,
    mode: "write" | "publish" | "barrier",
  ): Promise<number | "staged"> {
    const result = await client.query<{ out_lsn: string | number | null }>(
      "SELECT out_lsn FROM _myc_publish($1, $2, $3::bigint, $4::numeric, $5, $6, $7::bigint, $8)",
      [txId, this.nodeId, epoch ?? null, delta.toString(), changes, ddl, Date.now(), mode],
    );
    const lsn = result.rows[0]!.out_lsn;
    return lsn === null ? "staged" : Number(lsn);
  }

  /** Moves the shard's committed staged entries into its log, in a transaction of its own. */
  async publishPending(shardId: string): Promise<void> {
    const schema = postgresSchemaName(shardId);
    const lsn = await this.withTransaction(
      `publish staged entries of shard ${shardId}`,
      (client) => this.publish(client, null, undefined, 0n, null, null, "publish"),
      schema,
    );
    if (lsn !== "staged") this.notifier.notify(shardId, lsn);
  }

  /**
   * After a COMMIT: an inline entry wakes the log's readers; a staged one is published first (coalesced with
   * every other writer of the shard waiting for the same). The write committed either way, so a failed
   * publish is not the caller's error: the entry stays staged and a retry is scheduled.
   */
  async afterCommit(shardId: string, outcome: WriteOutcome): Promise<void> {
    if (outcome === null) return;
    this.changeLog.entriesWritten += 1;
    if (outcome !== "staged") {
      this.notifier.notify(shardId, outcome);
      return;
    }
    this.changeLog.entriesStaged += 1;
    await this.publishStaged(shardId);
  }

  publishStaged(shardId: string): Promise<void> {
    let publisher = this.publishers.get(shardId);
    if (!publisher) {
      publisher = new Coalescer(() => this.publishPending(shardId));
      this.publishers.set(shardId, publisher);
    }
    return publisher.run().catch(() => {
      if (this.closed) return;
      setTimeout(() => void this.publishStaged(shardId), 200).unref();
    });
  }

  async executeAutocommit(shardId: string, statements: readonly Statement[], options?: WriteOptions): Promise<StatementResult[]> {
    const schema = await this.schemaOf(shardId);
    if (statements.length === 0) throw new DbError("INVALID_ARGUMENT", "executeAutocommit needs at least one statement");
    for (const statement of statements) {
      assertUserStatement(statement.sql);
      assertSqlValues(statement.params);
    }
    assertWriteOptions(options);
    // No application-level batching: PostgreSQL already group-commits concurrent sessions' WAL flushes.
    return observed(this.settings.onQuery, this.counters, "autocommit", shardId, async () => {
      const { results, lsn } = await this.withTransaction(
        `autocommit on shard ${shardId}`,
        async (client, done) => {
          const results: StatementResult[] = [];
          for (const [index, statement] of statements.entries()) {
            results.push((await this.runUser(client, schema, statement.sql, statement.params, `statement ${index + 1} on shard ${shardId}`)).result);
          }
          // Drained even when no statement looked like a write: a SELECT can call a function that writes, and a
          // captured row left behind would be a change missing from the log.
          if (!this.settings.changeCapture) return { results, lsn: null };
          done.committed = true;
          return { results, lsn: await this.finishWrite(client, schema, null, options?.epoch) };
        },
        schema,
      );
      await this.afterCommit(shardId, lsn);
      return results;
    });
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

  async begin(shardId: string, txId: string, options?: WriteOptions): Promise<LocalTransaction> {
    const schema = await this.schemaOf(shardId);
    assertTxId(txId);
    assertWriteOptions(options);
    const key = activeKey(shardId, txId);
    if (this.active.has(key)) throw new DbError("INVALID_ARGUMENT", `transaction ${txId} is already open on shard ${shardId}`);
    const client = await this.connect();
    try {
      await client.query(this.beginSql(schema));
      if (options?.epoch !== undefined) {
        const stored = await this.storedEpoch(client);
        if (options.epoch < stored) throw staleEpoch(shardId, options.epoch, stored);
      }
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release(true);
      throw toDbError(error, `begin on shard ${shardId}`);
    }
    const transaction = new PostgresLocalTransaction(this, client, shardId, schema, txId, options?.epoch);
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
      // (the untagged id: a transaction prepared by a version before the database tag)
      for (const gid of [this.gid(txId, shardId), preparedTransactionId(txId, shardId)]) {
        try {
          await client.query(`${verb} PREPARED ${quoteLiteral(gid)}`);
          return true;
        } catch (error) {
          // 42704 undefined_object: no such prepared transaction; 0A000: it belongs to another database
          if (sqlStateOf(error) !== "42704" && sqlStateOf(error) !== "0A000") throw error;
        }
      }
      return false;
    } catch (error) {
      throw toDbError(error, `${verb.toLowerCase()} prepared ${txId} on shard ${shardId}`);
    } finally {
      client.release();
    }
  }

  gid(txId: string, shardId: string): string {
    return preparedTransactionId(txId, shardId, this.gidTag);
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
        // Its entry was staged by the prepare; log it now (coalesced with other commits of the shard; on failure
        // it stays staged and is published by the scheduled retry or the shard's next write).
        if (this.settings.changeCapture) await this.publishStaged(shardId);
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

  // ---- replication -----------------------------------------------------------------------------------------

  private context(shardId: string, schema: string): PgShardContext {
    return {
      shardId,
      schema,
      capture: this.settings.changeCapture,
      tables: (client) => this.capturedTables(client, schema),
      forgetTables: () => this.forgetTables(schema),
    };
  }

  /** Runs `body` on a pooled read-only session (no transaction). */
  private async reading<T>(context: string, body: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      return await body(client);
    } catch (error) {
      const mapped = toDbError(error, context);
      broken = mapped.code === "UNAVAILABLE" || mapped.code === "INTERNAL";
      throw mapped;
    } finally {
      client.release(broken ? true : undefined);
    }
  }

  private async position(shardId: string): Promise<{ headLsn: number; truncatedLsn: number; epoch: number; checksum: bigint }> {
    const schema = await this.schemaOf(shardId);
    return this.reading(`position of shard ${shardId}`, async (client) => {
      const result = await client.query<{ head_lsn: string; truncated_lsn: string; epoch: string; checksum: string }>(
        `SELECT head_lsn, truncated_lsn, epoch, checksum::text AS checksum FROM ${quoteIdentifier(schema)}._myc_replica WHERE id = 1`,
      );
      const row = result.rows[0];
      if (!row) throw new DbError("INTERNAL", `shard ${shardId} has no _myc_replica row`);
      return { headLsn: Number(row.head_lsn), truncatedLsn: Number(row.truncated_lsn), epoch: Number(row.epoch), checksum: checksumFromNumeric(row.checksum) };
    });
  }

  async setShardEpoch(shardId: string, epoch: number): Promise<void> {
    const schema = await this.schemaOf(shardId);
    assertEpochValue(epoch);
    await this.withTransaction(
      `set epoch of shard ${shardId}`,
      async (client) => {
        // The row lock publishers take, then SHARE on the staging table (in that order, like publishers): no
        // entry under a lower epoch commits after this returns (see postgres-replication.ts).
        const result = await client.query<{ epoch: string }>("UPDATE _myc_replica SET epoch = $1 WHERE id = 1 AND epoch <= $1 RETURNING epoch", [epoch]);
        if (result.rowCount === 0) throw staleEpoch(shardId, epoch, await this.storedEpoch(client));
        await client.query("LOCK TABLE _myc_staged IN SHARE MODE");
      },
      schema,
    );
  }

  async headLsn(shardId: string): Promise<number> {
    return (await this.position(shardId)).headLsn;
  }

  async readChanges(shardId: string, afterLsn: number, limit = defaultReadChangesLimit): Promise<ChangeEntry[]> {
    const schema = await this.schemaOf(shardId);
    assertLsn(afterLsn, "afterLsn");
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxReadChangesLimit) {
      throw new DbError("INVALID_ARGUMENT", `limit must be an integer from 1 to ${maxReadChangesLimit}, got ${limit}`);
    }
    return this.reading(`read changes of shard ${shardId}`, async (client) => {
      const s = quoteIdentifier(schema);
      const truncated = await client.query<{ truncated_lsn: string }>(`SELECT truncated_lsn FROM ${s}._myc_replica WHERE id = 1`);
      const truncatedLsn = Number(truncated.rows[0]?.truncated_lsn ?? 0);
      if (afterLsn < truncatedLsn) {
        throw new DbError(
          "REPLICATION_GAP",
          `shard ${shardId}: the change log was truncated through lsn ${truncatedLsn}; entries after ${afterLsn} are gone (resync from a snapshot)`,
        );
      }
      const result = await client.query<{
        lsn: string;
        tx_id: string | null;
        origin: string;
        origin_seq: string;
        epoch: string;
        committed_at_ms: string;
        changes: string;
        ddl: string | null;
        checksum: string;
      }>(
        `SELECT lsn, tx_id, origin, origin_seq, epoch, committed_at_ms, changes, ddl, checksum::text AS checksum
           FROM ${s}._myc_changes WHERE lsn > $1 ORDER BY lsn LIMIT $2`,
        [afterLsn, limit],
      );
      const entries: ChangeEntry[] = [];
      let bytes = 0;
      for (const row of result.rows) {
        bytes += row.changes.length + (row.ddl?.length ?? 0);
        if (entries.length > 0 && bytes > maxReadChangesBytes) break;
        const entry: ChangeEntry = {
          lsn: Number(row.lsn),
          txId: row.tx_id,
          origin: row.origin,
          originSeq: Number(row.origin_seq),
          epoch: Number(row.epoch),
          changes: decodeChanges(row.changes),
          committedAtMs: Number(row.committed_at_ms),
          checksum: checksumToHex(checksumFromNumeric(row.checksum)),
        };
        if (row.ddl !== null) entry.ddl = JSON.parse(row.ddl) as string[];
        entries.push(entry);
      }
      return entries;
    });
  }

  async waitForChanges(shardId: string, afterLsn: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    await this.schemaOf(shardId);
    assertLsn(afterLsn, "afterLsn");
    return this.notifier.wait(shardId, afterLsn, timeoutMs, signal, () => this.headLsn(shardId));
  }

  async truncateChanges(shardId: string, throughLsn: number): Promise<number> {
    const schema = await this.schemaOf(shardId);
    assertLsn(throughLsn, "throughLsn");
    return this.withTransaction(
      `truncate change log of shard ${shardId}`,
      async (client) => {
        const position = await lockPosition(client);
        const through = Math.min(throughLsn, position.headLsn);
        if (through <= position.truncatedLsn) return 0;
        const removed = await client.query("DELETE FROM _myc_changes WHERE lsn <= $1", [through]);
        await client.query("UPDATE _myc_replica SET truncated_lsn = $1 WHERE id = 1", [through]);
        return removed.rowCount ?? 0;
      },
      schema,
    );
  }

  async applyChanges(shardId: string, entries: readonly ChangeEntry[]): Promise<{ appliedLsn: number }> {
    const schema = await this.schemaOf(shardId);
    assertEntries(entries);
    const context = this.context(shardId, schema);
    const outcome = await observed(this.settings.onQuery, this.counters, "apply", shardId, () =>
      this.withTransaction(
        `apply on shard ${shardId}`,
        async (client) => {
          await client.query(`SET LOCAL ${captureSetting} = 'on'`);
          if (this.replicationRole) await client.query("SET LOCAL session_replication_role = replica");
          const start = await lockPosition(client);
          await assertSameEntries(client, shardId, start, entries);
          const fresh = entries.filter((entry) => entry.lsn > start.headLsn);
          if (fresh.length === 0) return { appliedLsn: start.headLsn, fresh };
          if (fresh[0]!.lsn !== start.headLsn + 1) {
            throw new DbError("REPLICATION_GAP", `shard ${shardId} has applied through lsn ${start.headLsn}; the next entry given is ${fresh[0]!.lsn}`);
          }
          await applyEntriesPg(client, context, start, fresh);
          const applied = fresh.filter((entry) => entry.txId !== null).map((entry) => entry.txId!);
          if (applied.length > 0) {
            await this.compiled(client, nodeBuilder.deleteFrom("adopted").where("shard_id", "=", shardId).where("tx_id", "in", applied).compile());
          }
          return { appliedLsn: fresh[fresh.length - 1]!.lsn, fresh };
        },
        schema,
      ),
    );
    if (outcome.fresh.length > 0) {
      if (outcome.fresh.some((entry) => entry.ddl)) {
        this.forgetTables(schema);
        this.schemaGenerations.set(schema, (this.schemaGenerations.get(schema) ?? 0) + 1);
      }
      this.changeLog.entriesApplied += outcome.fresh.length;
      this.notifier.notify(shardId, outcome.appliedLsn);
    }
    return { appliedLsn: outcome.appliedLsn };
  }

  async replicaState(shardId: string): Promise<ReplicaState> {
    const schema = await this.schemaOf(shardId);
    return this.reading(`replica state of shard ${shardId}`, async (client) => {
      const s = quoteIdentifier(schema);
      const position = await client.query<{ head_lsn: string; truncated_lsn: string; epoch: string; checksum: string }>(
        `SELECT head_lsn, truncated_lsn, epoch, checksum::text AS checksum FROM ${s}._myc_replica WHERE id = 1`,
      );
      const vector = await client.query<{ origin: string; seq: string }>(`SELECT origin, seq FROM ${s}._myc_vv ORDER BY origin`);
      const row = position.rows[0]!;
      return {
        appliedLsn: Number(row.head_lsn),
        truncatedLsn: Number(row.truncated_lsn),
        epoch: Number(row.epoch),
        versionVector: Object.fromEntries(vector.rows.map((entry) => [entry.origin, Number(entry.seq)])),
        checksum: checksumToHex(checksumFromNumeric(row.checksum)),
      };
    });
  }

  async checksumAt(shardId: string, lsn: number): Promise<string | null> {
    const schema = await this.schemaOf(shardId);
    assertLsn(lsn, "lsn");
    const position = await this.position(shardId);
    if (lsn === position.headLsn) return checksumToHex(position.checksum);
    if (lsn > position.headLsn) return null;
    if (lsn === 0) return position.truncatedLsn === 0 ? checksumToHex(0n) : null;
    return this.reading(`checksum of shard ${shardId}`, async (client) => {
      const result = await client.query<{ checksum: string }>(
        `SELECT checksum::text AS checksum FROM ${quoteIdentifier(schema)}._myc_changes WHERE lsn = $1`,
        [lsn],
      );
      return result.rows[0] ? checksumToHex(checksumFromNumeric(result.rows[0].checksum)) : null;
    });
  }

  async verifyChecksum(shardId: string): Promise<ChecksumVerification> {
    const schema = await this.schemaOf(shardId);
    const result = await this.reading(`verify checksum of shard ${shardId}`, (client) => verifyChecksumPg(client, schema));
    const incremental = checksumToHex(result.incremental);
    const scanned = checksumToHex(result.scanned);
    return { lsn: result.lsn, incremental, scanned, ok: incremental === scanned };
  }

  snapshot(shardId: string): AsyncIterable<SnapshotChunk> {
    const store = this;
    return {
      async *[Symbol.asyncIterator]() {
        const schema = await store.schemaOf(shardId);
        yield* snapshotChunksPg(() => store.connect(), store.context(shardId, schema), store.beginSql(schema), (client) =>
          store.publish(client, null, undefined, 0n, null, null, "barrier").then(() => undefined),
        );
      },
    };
  }

  async restoreSnapshot(shardId: string, chunks: AsyncIterable<SnapshotChunk> | Iterable<SnapshotChunk>): Promise<{ lsn: number }> {
    assertShardId(shardId);
    const next = chunkReader(chunks);
    const first = await next();
    if (first?.kind !== "begin" || first.formatVersion !== 1) {
      throw new DbError("INVALID_ARGUMENT", "a snapshot starts with a begin chunk of format version 1");
    }
    await this.ensureShard(shardId);
    const schema = postgresSchemaName(shardId);
    if ((await this.recoverPrepared()).some((entry) => entry.shardId === shardId)) {
      throw new DbError("BUSY", `shard ${shardId} has a prepared transaction; resolve it before restoring`);
    }
    const context = this.context(shardId, schema);
    await observed(this.settings.onQuery, this.counters, "restore", shardId, () =>
      this.withTransaction(
        `restore on shard ${shardId}`,
        async (client) => {
          await client.query(`SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(schema)}))`);
          const priorEpoch = await this.storedEpoch(client);
          await client.query(`SET LOCAL ${captureSetting} = 'on'`);
          // Everything of the old shard goes, in this transaction: tables, types, sequences, functions, log.
          await client.query(`DROP SCHEMA ${quoteIdentifier(schema)} CASCADE`);
          await this.createShardObjects(client, schema);
          this.forgetTables(schema);
          await restoreSnapshotPg(client, context, first, next, priorEpoch);
        },
        schema,
      ),
    );
    this.forgetTables(schema);
    this.schemaGenerations.set(schema, (this.schemaGenerations.get(schema) ?? 0) + 1);
    this.notifier.notify(shardId, first.lsn);
    return { lsn: first.lsn };
  }

  async adoptPrepared(shardId: string, txId: string, statements: readonly Statement[], options?: AdoptOptions): Promise<void> {
    await this.schemaOf(shardId);
    assertTxId(txId);
    if (!Array.isArray(statements)) throw new DbError("INVALID_ARGUMENT", "statements must be an array");
    for (const statement of statements) {
      assertUserStatement(statement.sql);
      assertSqlValues(statement.params);
    }
    const minAppliedLsn = options?.minAppliedLsn ?? 0;
    assertLsn(minAppliedLsn, "minAppliedLsn");
    await this.withTransaction(`adopt ${txId} on shard ${shardId}`, async (client) => {
      await this.compiled(
        client,
        nodeBuilder
          .insertInto("adopted")
          .values({
            shard_id: shardId,
            tx_id: txId,
            statements: encodeStatements(statements.map((statement) => ({ sql: statement.sql, params: [...statement.params] }))),
            adopted_at_ms: Date.now(),
            min_applied_lsn: minAppliedLsn,
          })
          .onConflict((conflict) => conflict.columns(["shard_id", "tx_id"]).doNothing())
          .compile(),
      );
    });
  }

  async discardAdopted(shardId: string, txId: string): Promise<void> {
    assertShardId(shardId);
    assertTxId(txId);
    await this.withTransaction(`forget adopted ${txId}`, async (client) => {
      await this.compiled(client, nodeBuilder.deleteFrom("adopted").where("shard_id", "=", shardId).where("tx_id", "=", txId).compile());
    });
  }

  async listAdopted(shardId: string): Promise<AdoptedTransaction[]> {
    assertShardId(shardId);
    return this.reading(`adopted transactions of shard ${shardId}`, async (client) => {
      const rows = await this.compiled(
        client,
        nodeBuilder.selectFrom("adopted").selectAll().where("shard_id", "=", shardId).orderBy("adopted_at_ms").orderBy("tx_id").compile(),
      );
      return rows.map((row) => ({
        shardId: row.shard_id,
        txId: row.tx_id,
        statements: decodeStatements(row.statements),
        adoptedAtMs: Number(row.adopted_at_ms),
        minAppliedLsn: Number(row.min_applied_lsn),
      }));
    });
  }

  /**
   * Re-executes adopted transactions through begin → execute → prepare (PREPARE TRANSACTION, entry staged), all
   * of them: PostgreSQL holds any number of prepared transactions per shard.
   */
  async activatePrepared(shardId: string): Promise<ActivationResult> {
    const schema = await this.schemaOf(shardId);
    const result: ActivationResult = { activated: [], skipped: [], waiting: [] };
    const prepared = new Set((await this.recoverPrepared()).filter((entry) => entry.shardId === shardId).map((entry) => entry.txId));
    for (const adopted of await this.listAdopted(shardId)) {
      const logged = await this.reading(`log lookup on shard ${shardId}`, async (client) => {
        const found = await client.query(`SELECT 1 FROM ${quoteIdentifier(schema)}._myc_changes WHERE tx_id = $1 LIMIT 1`, [adopted.txId]);
        return (found.rowCount ?? 0) > 0;
      });
      if (prepared.has(adopted.txId) || logged || (await this.hasCommitMarker(shardId, adopted.txId))) {
        await this.discardAdopted(shardId, adopted.txId);
        result.skipped.push(adopted.txId);
        continue;
      }
      const head = await this.headLsn(shardId);
      if (head < adopted.minAppliedLsn) {
        throw new DbError(
          "REPLICATION_GAP",
          `shard ${shardId}: adopted transaction ${adopted.txId} ran after lsn ${adopted.minAppliedLsn}, this replica has applied only ${head}`,
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
      await this.discardAdopted(shardId, adopted.txId);
      result.activated.push(adopted.txId);
    }
    return result;
  }

  /** The shard's stored epoch, read on `client` (schema-qualified when the session's search_path is not the shard's). */
  async storedEpoch(client: PoolClient, schema?: string): Promise<number> {
    const table = schema ? `${quoteIdentifier(schema)}._myc_replica` : "_myc_replica";
    const result = await client.query<{ epoch: string | number }>(`SELECT epoch FROM ${table} WHERE id = 1`);
    return Number(result.rows[0]?.epoch ?? 0);
  }

  /**
   * A preparing transaction's entry: drained and collapsed here, staged in `_myc_pending` by the returned
   * statement (it is logged when it commits). A prepared transaction always gets an entry, even without row
   * changes, so replicas learn its txId.
   */
  async stageCall(client: PoolClient, schema: string, txId: string, epoch: number | undefined): Promise<string> {
    const events = await drainCapture(client, (name) => this.capturedTable(client, schema, name));
    const changes = collapseEvents(events, (table) => this.tableCache.get(schema)?.get(table)?.keyColumns ?? []);
    return this.publishCall(txId, epoch, changesDelta(changes), encodeChanges(changes), null, "prepare");
  }

  async rollbackPreparedQuietly(shardId: string, txId: string): Promise<void> {
    await this.finishPrepared("ROLLBACK", shardId, txId).catch(() => false);
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
      changeLog: { ...this.changeLog, waiters: this.notifier.size },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notifier.clear();
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
  /** Statements run, writing or not (a commit drains the capture buffer after any). */
  private executed = 0;

  constructor(
    private readonly store: PostgresShardStore,
    client: PoolClient,
    readonly shardId: string,
    private readonly schema: string,
    readonly txId: string,
    readonly epoch: number | undefined,
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
          this.executed += 1;
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
        // Marker, staged entry and PREPARE in one round trip (simple protocol: an error skips the rest).
        const parts = [`INSERT INTO _myc_txn (tx_id, prepared_at_ms) VALUES (${quoteLiteral(this.txId)}, ${Date.now()})`];
        if (this.store.settings.changeCapture) parts.push(await this.store.stageCall(client, this.schema, this.txId, this.epoch));
        parts.push(`PREPARE TRANSACTION ${quoteLiteral(this.store.gid(this.txId, this.shardId))}`);
        await client.query(parts.join("; "));
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
      if (this.epoch !== undefined) {
        // setShardEpoch may have committed meanwhile: a prepare is reported only if it became durable first.
        const stored = await this.store.storedEpoch(client, this.schema).catch(() => Number.MAX_SAFE_INTEGER);
        if (this.epoch < stored) {
          this.preparing = false;
          this.end("rolled_back", false); // (releases this connection before rolling back on another)
          await this.store.rollbackPreparedQuietly(this.shardId, this.txId);
          throw staleEpoch(this.shardId, this.epoch, stored);
        }
      }
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
        let lsn: WriteOutcome = null;
        try {
          if (this.executed > 0 && this.store.settings.changeCapture) {
            lsn = await this.store.finishWrite(client, this.schema, this.txId, this.epoch); // (commits)
          } else {
            if (this.epoch !== undefined && this.statements.length > 0) {
              const stored = await this.store.storedEpoch(client);
              if (this.epoch < stored) throw staleEpoch(this.shardId, this.epoch, stored);
            }
            await client.query("COMMIT");
          }
          this.end("committed", false);
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          this.end("rolled_back", true);
          throw toDbError(error, `commit on shard ${this.shardId}`);
        }
        await this.store.afterCommit(this.shardId, lsn);
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
